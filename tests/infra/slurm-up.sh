#!/bin/bash
# Start a throw-away Slurm cluster on this host for the tests: NNODES fake nodes (all slurmd
# here, one port each) with fake GPUs, slurmdbd + MariaDB for sacct. State starts empty.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
NNODES=${NNODES:-2}; CPUS=${CPUS:-4}; GPUS=${GPUS:-4}
H=$(hostname -s)
apt_install slurmctld slurmd slurm-client munge slurmdbd mariadb-server

bash "$HERE/slurm-down.sh"   # daemons left by an earlier (ended) run, found by their PID files
claim slurm || exit 3        # never over a cluster another live test run started
mkdir -p /var/lib/fakegpu   # gres File= must be a device: clones of /dev/null work
for i in $(seq 0 $((GPUS-1))); do [ -c /var/lib/fakegpu/nvidia$i ] || mknod -m 666 /var/lib/fakegpu/nvidia$i c 1 3; done
install -d -o slurm -g slurm /var/spool/slurmctld /var/log/slurm
install -d /var/spool/slurmd
rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=abcitest
SlurmctldHost=$H
AuthType=auth/munge
# a requeued job waits cred_expire+1 s before it may start again (default 120 s): the
# requeue tests would spend minutes waiting; a site keeps its own value
AuthInfo=cred_expire=30
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=6817
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MinJobAge=10
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=n[1-$NNODES] NodeHostname=$H NodeAddr=127.0.0.1 Port=[17001-$((17000+NNODES))] CPUs=$CPUS RealMemory=16000 Gres=gpu:$GPUS State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=n[1-$NNODES] Name=gpu File=/var/lib/fakegpu/nvidia[0-$((GPUS-1))]
CONF

install -d -o munge -g munge -m 0755 /run/munge
munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null

install -d -o mysql -g mysql /run/mysqld
if ! mariadb-admin ping >/dev/null 2>&1; then
  nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 >/var/log/slurm/mariadb.out 2>&1 &
  for _ in $(seq 1 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
mariadb -e "DROP DATABASE IF EXISTS abcitest_acct; CREATE DATABASE abcitest_acct; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw'; GRANT ALL ON abcitest_acct.* TO 'slurm'@'localhost';"
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=abcitest_acct
CONF
chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
/usr/sbin/slurmdbd
for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null && break; sleep 0.2; done

/usr/sbin/slurmctld -c     # -c: clear saved jobs and reservations
for i in $(seq 1 "$NNODES"); do /usr/sbin/slurmd -N n$i; done
# ready = a real allocation on every node succeeds (sinfo 'idle' comes too early)
for _ in $(seq 1 150); do timeout 20 srun -N "$NNODES" -t 1 true 2>/dev/null && break; sleep 0.3; done
timeout 20 srun -N "$NNODES" -t 1 true
# The fake nodes' names resolve (to this host), as a real cluster's do: a multi-node job's
# ranks meet at the first node's name.
grep -q "# abcitrain-slurm-test" /etc/hosts || echo "127.0.0.1 $(seq -f 'n%g' -s ' ' 1 "$NNODES") # abcitrain-slurm-test" >> /etc/hosts
echo "slurm up: $(sinfo -h -o '%D nodes %t')"
