#!/bin/bash
# up N | down N: extra Grid Engine exec hosts sgenode1..N, each an sge_execd in its own
# network + UTS namespace on a private bridge made here (10.254.0.0/24, never leaves this
# machine). Needs sge-up.sh first. Stop the execds (down) before the qmaster.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
ACTION=${1:-up}; N=${2:-2}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
HN=$(/usr/lib/gridengine/gethostname -name)
if [ "$ACTION" = up ]; then
  ip link show br-abcit >/dev/null 2>&1 || { ip link add br-abcit type bridge; ip addr add 10.254.0.1/24 dev br-abcit; ip link set br-abcit up; }
  for n in $(seq 1 "$N"); do
    ns=abcitn$n; name=sgenode$n; ip=10.254.0.$((10+n))
    if [ -e /run/netns/$ns ]; then   # left by an earlier run that did not come down: stop
      stop_pidfile /var/spool/gridengine/execd/$name/execd.pid sge_execd   # its execd first
      ip netns del $ns 2>/dev/null || true; ip link del veth-$ns 2>/dev/null || true
    fi
    grep -q " $name # abcitrain-test" /etc/hosts || echo "$ip $name # abcitrain-test" >> /etc/hosts
    ip netns add $ns; ip link add veth-$ns type veth peer name eth0 netns $ns
    ip link set veth-$ns master br-abcit up
    ip -n $ns addr add $ip/24 dev eth0; ip -n $ns link set eth0 up; ip -n $ns link set lo up
    mkdir -p /etc/netns/$ns   # `ip netns exec` bind-mounts this over /etc/hosts
    { echo "127.0.0.1 localhost"; echo "10.254.0.1 $HN"; for m in $(seq 1 "$N"); do echo "10.254.0.$((10+m)) sgenode$m"; done; } > /etc/netns/$ns/hosts
    printf 'hostname %s\nload_scaling NONE\ncomplex_values rt_F=1,gpu=4\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' $name > /tmp/exechost.$name
    qconf -Ae /tmp/exechost.$name >/dev/null 2>&1 || true; rm -f /tmp/exechost.$name
    qconf -aattr hostgroup hostlist $name @allhosts >/dev/null 2>&1 || true
    # a submit host too: training jobs submit their continuation from the node they run on
    qconf -as $name >/dev/null 2>&1 || true
    # the fake hosts share /tmp, where per-job TMPDIRs would collide: one tmpdir per host
    install -d -m 1777 /tmp/sge-tmp/$name
    qconf -mattr queue tmpdir /tmp/sge-tmp/$name all.q@$name >/dev/null 2>&1
    ip netns exec $ns unshare --uts sh -c "hostname $name; exec /usr/sbin/sge_execd"
  done
  for _ in $(seq 1 150); do
    [ "$(qstat -f -q 'all.q@sgenode*' | grep -cE 'all.q@sgenode[0-9]+ +BIP +[0-9]+/[0-9]+/[0-9]+ +[0-9.]+ ')" = "$N" ] && break; sleep 0.2; done
  qstat -f -q 'all.q@sgenode*' | grep all.q@
else
  may_stop sge || exit 0
  for n in $(seq 1 "$N"); do
    stop_pidfile /var/spool/gridengine/execd/sgenode$n/execd.pid sge_execd
    qconf -dattr hostgroup hostlist sgenode$n @allhosts >/dev/null 2>&1 || true
    qconf -purge queue tmpdir all.q@sgenode$n >/dev/null 2>&1 || true
    qconf -de sgenode$n >/dev/null 2>&1 || true
    qconf -ds sgenode$n >/dev/null 2>&1 || true
    rm -rf /tmp/sge-tmp/sgenode$n
    ip netns del abcitn$n 2>/dev/null || true; ip link del veth-abcitn$n 2>/dev/null || true
    rm -rf /etc/netns/abcitn$n /var/spool/gridengine/execd/sgenode$n
  done
  rmdir /etc/netns /tmp/sge-tmp 2>/dev/null || true
  ip link del br-abcit 2>/dev/null || true
  hosts_drop abcitrain-test
  release sge
fi
