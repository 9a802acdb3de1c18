#!/bin/bash
# Start a throw-away OpenPBS complex for the tests (tests/infra/openpbs-build.sh installs it):
# pbs_server, pbs_sched, pbs_comm and a mom on host pbshost, and a second mom on pbsnode2,
# each in its own network + UTS namespace on a private bridge made here (10.254.1.0/24, never
# leaves this machine; PBS refuses loopback addresses). Queues named like ABCI 3.0's (rt_HF,
# rt_HG, rt_HC), job history kept, output delivered with cp ($usecp). Clients on this host
# use /opt/pbs/bin (Grid Engine's qsub may come first on PATH: name PBS's explicitly).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
bash "$HERE/openpbs-build.sh"
PBS_EXEC=/opt/pbs
HN=$(hostname)
bash "$HERE/openpbs-down.sh"    # daemons left by an earlier (ended) run, by their lock files
claim pbs || exit 3
# user the data service (PostgreSQL) runs as
id pbsdata >/dev/null 2>&1 || useradd -r -m -d /var/spool/pbsdata -s /bin/bash pbsdata
ip link show br-abcitpbs >/dev/null 2>&1 || { ip link add br-abcitpbs type bridge
  ip addr add 10.254.1.1/24 dev br-abcitpbs; ip link set br-abcitpbs up; }
hosts() { echo "127.0.0.1 localhost"; echo "10.254.1.1 $HN"; echo "10.254.1.10 pbshost"
          echo "10.254.1.11 pbsnode2"; }
for pair in "abcitpbs0 pbshost 10.254.1.10" "abcitpbs1 pbsnode2 10.254.1.11"; do
  set -- $pair; ns=$1; name=$2; ip=$3
  grep -q " $name # abcitrain-openpbs" /etc/hosts || echo "$ip $name # abcitrain-openpbs" >> /etc/hosts
  ip netns add $ns; ip link add veth-$ns type veth peer name eth0 netns $ns
  ip link set veth-$ns master br-abcitpbs up
  ip -n $ns addr add $ip/24 dev eth0; ip -n $ns link set eth0 up; ip -n $ns link set lo up
  mkdir -p /etc/netns/$ns; hosts > /etc/netns/$ns/hosts
done
# the server host's configuration (also the clients' here), and the second mom's
cat > /etc/pbs.conf <<CONF
PBS_EXEC=$PBS_EXEC
PBS_SERVER=pbshost
PBS_HOME=/var/spool/pbs
PBS_START_SERVER=1
PBS_START_SCHED=1
PBS_START_COMM=1
PBS_START_MOM=1
PBS_CORE_LIMIT=unlimited
PBS_SCP=/usr/bin/scp
CONF
cat > /etc/pbs-pbsnode2.conf <<CONF
PBS_EXEC=$PBS_EXEC
PBS_SERVER=pbshost
PBS_HOME=/var/spool/pbs-pbsnode2
PBS_START_SERVER=0
PBS_START_SCHED=0
PBS_START_COMM=0
PBS_START_MOM=1
PBS_LEAF_ROUTERS=pbshost
PBS_CORE_LIMIT=unlimited
CONF
in_ns() { local ns=$1 name=$2; shift 2; ip netns exec "$ns" unshare --uts sh -c "hostname $name; exec \"\$@\"" _ "$@"; }
# PBS_HOME made once (the data service's first start takes ~10 s); a half-made one again
[ -f /var/spool/pbs/.abcitrain-ready ] || rm -rf /var/spool/pbs /var/spool/pbs-pbsnode2
if [ ! -d /var/spool/pbs/server_priv ]; then
  in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf "$PBS_EXEC/libexec/pbs_habitat" >/tmp/pbs_habitat.log 2>&1 \
    || { tail -20 /tmp/pbs_habitat.log >&2; exit 1; }
fi
if [ ! -d /var/spool/pbs-pbsnode2/mom_priv ]; then
  in_ns abcitpbs1 pbsnode2 env PBS_CONF_FILE=/etc/pbs-pbsnode2.conf "$PBS_EXEC/libexec/pbs_habitat" >/tmp/pbs_habitat2.log 2>&1 \
    || { tail -20 /tmp/pbs_habitat2.log >&2; exit 1; }
fi
touch /var/spool/pbs/.abcitrain-ready
for home in /var/spool/pbs /var/spool/pbs-pbsnode2; do
  printf '$clienthost pbshost\n$usecp *:/ /\n' > "$home/mom_priv/config"
done
in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf "$PBS_EXEC/libexec/pbs_init.d" start
in_ns abcitpbs1 pbsnode2 env PBS_CONF_FILE=/etc/pbs-pbsnode2.conf "$PBS_EXEC/sbin/pbs_mom"
# pbs_init.d once came back without a scheduler (an up right after a down: the new pbs_sched
# never logged, jobs stayed queued): start it again until its lock names a live pbs_sched
for try in 1 2 3 4 5; do
  p=$(head -1 /var/spool/pbs/sched_priv/sched.lock 2>/dev/null | tr -dc 0-9)
  [ -n "$p" ] && alive "$p" pbs_sched && break
  [ "$try" = 5 ] && { echo "pbs_sched did not start" >&2; exit 1; }
  echo "pbs_sched is not running: starting it (try $try)" >&2
  in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf "$PBS_EXEC/sbin/pbs_sched" || true
  sleep 1
done
export PBS_CONF_FILE=/etc/pbs.conf PATH=$PBS_EXEC/bin:$PATH
for _ in $(seq 1 150); do qstat -B >/dev/null 2>&1 && break; sleep 0.2; done
qstat -B >/dev/null   # fails loudly when the server did not come up
# managers are root on the server host: configure from there
qm() { in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf "$PBS_EXEC/bin/qmgr" -c "$1"; }
qm "create node pbshost" 2>/dev/null || true
qm "create node pbsnode2" 2>/dev/null || true
for q in rt_HF rt_HG rt_HC; do
  qm "create queue $q queue_type=execution,enabled=true,started=true" 2>/dev/null || true
done
qm "set server default_queue=rt_HF"
qm "set server job_history_enable=True"
qm "set server flatuid=True"
qm "set server acl_roots=root@*"
qm "set server scheduler_iteration=2"
# a clean slate: jobs an earlier run left, finished ones included
old=$(in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf "$PBS_EXEC/bin/qselect" -x 2>/dev/null || true)
[ -z "$old" ] || in_ns abcitpbs0 pbshost env PBS_CONF_FILE=/etc/pbs.conf \
  "$PBS_EXEC/bin/qdel" -x -W force $old >/dev/null 2>&1 || true
for _ in $(seq 1 300); do
  [ "$(pbsnodes -a 2>/dev/null | grep -c '^ *state = free')" = 2 ] && break; sleep 0.2; done
pbsnodes -a | grep -E '^[a-z]|state ='
# The login host over SSH: an sshd on pbshost (10.254.1.10, port 22) with its own host key and
# key-only login for this user. Its sessions have PBS's commands first on PATH, as ABCI's login
# nodes have (this machine's /usr/bin/qsub is Grid Engine's). /run/abcitrain-openpbs-ssh holds
# the client key and a known_hosts with the server's key; tests write their own ssh config.
D=/run/abcitrain-openpbs-ssh
rm -rf "$D"; mkdir -p "$D" /run/sshd; chmod 700 "$D"
ssh-keygen -q -t ed25519 -N '' -C abcitrain-pbs-host -f "$D/host_key"
ssh-keygen -q -t ed25519 -N '' -C abcitrain-pbs-user -f "$D/id"
cp "$D/id.pub" "$D/authorized_keys"
cat > "$D/sshd_config" <<CONF
Port 22
ListenAddress 10.254.1.10
HostKey $D/host_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
SetEnv PATH=$PBS_EXEC/bin:/usr/local/bin:/usr/bin:/bin PBS_CONF_FILE=/etc/pbs.conf
Subsystem sftp internal-sftp
CONF
printf 'pbshost %s\n' "$(cut -d' ' -f1,2 "$D/host_key.pub")" > "$D/known_hosts"
in_ns abcitpbs0 pbshost /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
for _ in $(seq 1 50); do [ -s "$D/sshd.pid" ] && break; sleep 0.1; done
ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile="$D/known_hosts" -o StrictHostKeyChecking=yes \
  -i "$D/id" -o IdentitiesOnly=yes pbshost 'command -v qsub' | grep -q "^$PBS_EXEC/bin/qsub$"
echo "sshd up on pbshost:22 (pid $(cat "$D/sshd.pid"))"
