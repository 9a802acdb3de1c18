#!/bin/bash
# Stop what slurm-up.sh started, by PID file, and drop the test accounting database.
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
may_stop slurm || exit 0
for f in /run/slurmd-*.pid; do [ -e "$f" ] && stop_pidfile "$f" slurmd; done
stop_pidfile /run/slurmctld.pid slurmctld
stop_pidfile /run/slurmdbd.pid slurmdbd
mariadb-admin ping >/dev/null 2>&1 && mariadb -e "DROP DATABASE IF EXISTS abcitest_acct"
stop_pidfile /run/mysqld/mysqld.pid mariadbd
stop_pidfile /run/munge/munged.pid munged
rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*
hosts_drop abcitrain-slurm-test
release slurm
true
