#!/bin/bash
# Start a fresh Son of Grid Engine cell "default" on this host for the tests, with an
# ABCI-like rt_F consumable, a one-slot-per-host PE ("pernode") and 1 s scheduling.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
claim sge || exit 3          # never over a cell another live test run started
H=$(hostname)
getent hosts "$H" >/dev/null || echo "127.0.1.1 $H" >> /etc/hosts
if ! dpkg -s gridengine-master gridengine-exec gridengine-client >/dev/null 2>&1; then
  debconf-set-selections <<SEL
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string $H
SEL
  apt_install gridengine-master gridengine-exec gridengine-client
fi
apt_install iproute2 util-linux

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SP=/var/spool/gridengine
HN=$(/usr/lib/gridengine/gethostname -name)
IP=$(getent hosts "$HN" | awk '{print $1; exit}')
RN=$(/usr/lib/gridengine/gethostbyaddr -name "$IP")
# 127.0.0.1 reverse-resolves to "localhost" while the host calls itself $HN: without this
# alias every client call fails with "access denied (client IP resolved to host name ...)".
if [ "$RN" != "$HN" ]; then echo "$HN $RN" > $COMMON/host_aliases; else rm -f $COMMON/host_aliases; fi
echo "$HN" > $COMMON/act_qmaster
chown sgeadmin:sgeadmin $COMMON/act_qmaster 2>/dev/null || true

# a cell left by an earlier run (its daemons are found by their PID files) is stopped first
bash "$HERE/sge-down.sh"
rm -rf $SP/spooldb/* $SP/qmaster/* $SP/execd/* $COMMON/accounting
install -d -o sgeadmin -g sgeadmin -m 755 $SP/spooldb $SP/qmaster $SP/qmaster/job_scripts $SP/execd
su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SP/spooldb sgeadmin" sgeadmin >/dev/null

/usr/sbin/sge_qmaster
for _ in $(seq 1 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done

W=$(mktemp -d); cd "$W"
# root may submit (min_uid 1000 by default); accounting flushed every second
qconf -sconf > global
sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
       -e 's/^load_report_time .*/load_report_time 00:00:05/' -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' global
qconf -Mconf global >/dev/null            # the file must be named after the config
qconf -ssconf > sched
sed -i -e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
       -e 's/^flush_finish_sec .*/flush_finish_sec 1/' sched
qconf -Msconf sched >/dev/null
qconf -sc > complexes
cat >> complexes <<C
rt_F        rt_F        INT <= YES JOB 0 0
gpu         gpu         INT <= YES YES 0 0
C
qconf -Mc complexes >/dev/null
printf 'hostname %s\nload_scaling NONE\ncomplex_values rt_F=1,gpu=4\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$HN" > exechost
qconf -Ae exechost >/dev/null
qconf -as "$HN" >/dev/null
printf 'group_name @allhosts\nhostlist %s\n' "$HN" > allhosts; qconf -Ahgrp allhosts >/dev/null
printf 'pe_name pernode\nslots 999\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\nstop_proc_args NONE\nallocation_rule 1\ncontrol_slaves TRUE\njob_is_first_task TRUE\nurgency_slots min\naccounting_summary TRUE\nqsort_args NONE\n' > pernode
qconf -Ap pernode >/dev/null
cat > all.q <<Q
qname all.q
hostlist @allhosts
seq_no 0
load_thresholds NONE
suspend_thresholds NONE
nsuspend 1
suspend_interval 00:05:00
priority 0
min_cpu_interval 00:05:00
processors UNDEFINED
qtype BATCH INTERACTIVE
ckpt_list NONE
pe_list pernode
rerun FALSE
slots 4
tmpdir /tmp
shell /bin/bash
prolog NONE
epilog NONE
shell_start_mode unix_behavior
starter_method NONE
suspend_method NONE
resume_method NONE
terminate_method NONE
notify 00:00:60
owner_list NONE
user_lists NONE
xuser_lists NONE
subordinate_list NONE
complex_values NONE
projects NONE
xprojects NONE
calendar NONE
initial_state default
s_rt INFINITY
h_rt INFINITY
s_cpu INFINITY
h_cpu INFINITY
s_fsize INFINITY
h_fsize INFINITY
s_data INFINITY
h_data INFINITY
s_stack INFINITY
h_stack INFINITY
s_core INFINITY
h_core INFINITY
s_rss INFINITY
h_rss INFINITY
s_vmem INFINITY
h_vmem INFINITY
Q
qconf -Aq all.q >/dev/null
cd /; rm -rf "$W"

/usr/sbin/sge_execd
# ready = a real job runs to completion
for _ in $(seq 1 100); do timeout 30 qsub -sync y -b y -j y -o /dev/null -N ready true >/dev/null 2>&1 && break; sleep 0.3; done
timeout 30 qsub -sync y -b y -j y -o /dev/null -N ready true >/dev/null
echo "sge up: $(qstat -f | grep -c 'all.q@') queue instance(s)"
