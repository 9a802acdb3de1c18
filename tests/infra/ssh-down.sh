#!/bin/bash
# Stop what ssh-up.sh started, by PID file, and forget its keys and node names.
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
may_stop ssh || exit 0
D=/run/abcitrain-ssh-test
stop_pidfile "$D/sshd.pid" sshd
rm -rf "$D"
sed -i '/# abcitrain-ssh-test$/d' /etc/hosts
release ssh
true
