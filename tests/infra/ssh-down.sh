#!/bin/bash
# Stop what ssh-up.sh started, by PID file, and forget its keys and node names.
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
may_stop ssh || exit 0
D=/run/abcitrain-ssh-test
stop_pidfile "$D/sshd.pid" sshd
rm -rf "$D"
hosts_drop abcitrain-ssh-test
release ssh
true
