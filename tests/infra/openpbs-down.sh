#!/bin/bash
# Stop the test OpenPBS complex started by openpbs-up.sh, each daemon by its lock file's PID,
# and remove its namespaces, bridge and /etc/hosts lines.
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
may_stop pbs || exit 0
lockpid() { [ -f "$1" ] && head -1 "$1" | tr -dc 0-9; }
stop_lock() {  # stop_lock LOCKFILE COMM
  local p; p=$(lockpid "$1")
  [ -n "$p" ] && alive "$p" "$2" && { kill "$p"; for _ in $(seq 1 150); do alive "$p" "$2" || break; sleep 0.2; done
    alive "$p" "$2" && kill -9 "$p"; }
  true
}
# the login host's sshd (its listener; the sessions it forked end with their connections)
stop_pidfile /run/abcitrain-openpbs-ssh/sshd.pid sshd
rm -rf /run/abcitrain-openpbs-ssh
# the server first, cleanly, so that it saves its job sequence (qterm, as a manager on its host)
if [ -e /run/netns/abcitpbs0 ]; then
  ip netns exec abcitpbs0 env PBS_CONF_FILE=/etc/pbs.conf timeout 30 /opt/pbs/bin/qterm -t quick \
    >/dev/null 2>&1 || true
fi
stop_lock /var/spool/pbs-pbsnode2/mom_priv/mom.lock pbs_mom
stop_lock /var/spool/pbs/mom_priv/mom.lock pbs_mom
stop_lock /var/spool/pbs/sched_priv/sched.lock pbs_sched
stop_lock /var/spool/pbs/server_priv/server.lock pbs_server.bin
stop_lock /var/spool/pbs/server_priv/comm.lock pbs_comm
# the data service (PostgreSQL, run as pbsdata)
if [ -f /var/spool/pbs/datastore/postmaster.pid ]; then
  p=$(head -1 /var/spool/pbs/datastore/postmaster.pid)
  [ -n "$p" ] && kill "$p" 2>/dev/null && for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
fi
for ns in abcitpbs0 abcitpbs1; do
  ip netns del $ns 2>/dev/null || true; ip link del veth-$ns 2>/dev/null || true; rm -rf /etc/netns/$ns
done
rmdir /etc/netns 2>/dev/null || true
ip link del br-abcitpbs 2>/dev/null || true
hosts_drop abcitrain-openpbs
release pbs
