# Shared helpers for the test cluster scripts (sourced). Root, Debian 12, no systemd.
export DEBIAN_FRONTEND=noninteractive
apt_install() {  # install Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}
# alive PID COMM: the pid is still that daemon (not reused, not a zombie)
alive() { [ "$(cat /proc/$1/comm 2>/dev/null)" = "$2" ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null; }
# stop_pidfile FILE COMM: SIGTERM the daemon named in FILE, SIGKILL after 30 s
stop_pidfile() {
  [ -f "$1" ] || return 0
  local p; p=$(cat "$1")
  if [ -n "$p" ] && alive "$p" "$2"; then
    kill "$p"
    for _ in $(seq 1 150); do alive "$p" "$2" || break; sleep 0.2; done
    if alive "$p" "$2"; then echo "$2 ($p) ignored SIGTERM for 30 s; SIGKILL" >&2; kill -9 "$p"; sleep 0.5; fi
  fi
  rm -f "$1"
}
# Test clusters are system-wide (daemons, /etc/hosts, /run, spools): one test run owns each at
# a time. The owner file names the run's token and its pytest pid (ABCITRAIN_TEST_OWNER and
# ABCITRAIN_TEST_OWNER_PID, set by tests/conftest.py; by hand, this shell).
owner_file() { echo "/run/abcitrain-test-$1.owner"; }
# other_owner NAME: print the pid of ANOTHER live run that owns NAME; false if none
other_owner() {
  local f owner pid; f=$(owner_file "$1")
  [ -f "$f" ] || return 1
  read -r owner pid < "$f" || true
  [ "$owner" != "${ABCITRAIN_TEST_OWNER:-manual-$$}" ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}
# claim NAME: refuse (exit status 3) to start over a cluster another live run started
claim() {
  local pid
  if pid=$(other_owner "$1"); then
    echo "refusing to start the $1 test cluster: another test run (pid $pid) started it and is still running; wait for it to end (or stop that run)" >&2
    return 3
  fi
  echo "${ABCITRAIN_TEST_OWNER:-manual-$$} ${ABCITRAIN_TEST_OWNER_PID:-$PPID}" > "$(owner_file "$1")"
}
# may_stop NAME: false (with a word why) when another live run owns NAME; FORCE=1 overrides
may_stop() {
  local pid
  [ "${FORCE:-0}" = 1 ] && return 0
  if pid=$(other_owner "$1"); then
    echo "not stopping the $1 test cluster: another test run (pid $pid) owns it (FORCE=1 to stop it anyway)" >&2
    return 1
  fi
}
release() { rm -f "$(owner_file "$1")"; }
# hosts_drop TAG: remove the /etc/hosts lines ending in "# TAG", IN PLACE. Never `sed -i`: it
# renames a new file over /etc/hosts, and Linux then detaches the bind mounts that
# `ip netns exec` put over /etc/hosts in other mount namespaces, so the Grid Engine hosts in
# their namespaces (sge-nodes.sh) would suddenly resolve names through the host's file.
hosts_drop() {
  local kept; kept=$(grep -v -- "# $1\$" /etc/hosts || true)
  printf '%s\n' "$kept" > /etc/hosts
}
