#!/bin/bash
# Stop every sge_execd, then the qmaster (this order: see sge-nodes.sh), by PID file.
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
may_stop sge || exit 0       # the ownership is released by sge-nodes.sh down, run last
for f in /var/spool/gridengine/execd/*/execd.pid; do [ -e "$f" ] && stop_pidfile "$f" sge_execd; done
stop_pidfile /var/spool/gridengine/qmaster/qmaster.pid sge_qmaster
true
