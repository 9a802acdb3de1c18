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
