#!/bin/bash
# A real OpenSSH server on loopback for the tests that cross "nodes" over ssh: two node names,
# dsnode1 = 127.0.0.2 and dsnode2 = 127.0.0.3 (loopback addresses, but not this host's own:
# Open MPI takes a name that resolves to 127.0.0.1 for this host and would fold the two into
# one node), sshd on both at PORT (ABCITRAIN_TEST_SSH_PORT, default 22022) with its own host
# key and key-only login for this user. Installs pdsh and Open MPI for the launchers.
# Sessions have ABCITRAIN_LOCAL_SPOOL=/run/abcitrain-ssh-test/local-spool (the far side's local
# scheduler). Writes, in /run/abcitrain-ssh-test: the client key, a known_hosts holding the server's key
# under both names and port (host keys are verified, never accepted blindly) and an ssh_config
# that uses them; tests hand it to ssh with -F. Stop with ssh-down.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
PORT=${ABCITRAIN_TEST_SSH_PORT:-22022}
D=/run/abcitrain-ssh-test
apt_install openssh-server openssh-client pdsh openmpi-bin
bash "$HERE/ssh-down.sh"     # one left by an earlier (ended) run
claim ssh || exit 3          # never over an sshd another live test run started
for ip in 127.0.0.2 127.0.0.3; do
  if (exec 3<>"/dev/tcp/$ip/$PORT") 2>/dev/null; then
    echo "port $PORT on $ip is taken; set ABCITRAIN_TEST_SSH_PORT" >&2; exit 1
  fi
done
rm -rf "$D"; mkdir -p "$D" /run/sshd; chmod 700 "$D"
ssh-keygen -q -t ed25519 -N '' -C abcitrain-test-host -f "$D/host_key"
ssh-keygen -q -t ed25519 -N '' -C abcitrain-test-user -f "$D/id"
cp "$D/id.pub" "$D/authorized_keys"
cat > "$D/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.2
ListenAddress 127.0.0.3
HostKey $D/host_key
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
# the far side's local scheduler (abcitrain's local cluster over ssh) keeps its spool here, not in
# this user's home
SetEnv ABCITRAIN_LOCAL_SPOOL=$D/local-spool
Subsystem sftp internal-sftp
CONF
key=$(cut -d' ' -f1,2 "$D/host_key.pub")
printf '[dsnode1]:%s %s\n[dsnode2]:%s %s\n' "$PORT" "$key" "$PORT" "$key" > "$D/known_hosts"
cat > "$D/ssh_config" <<CONF
Host dsnode1 dsnode2
  IdentityFile $D/id
  IdentitiesOnly yes
  UserKnownHostsFile $D/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
CONF
echo "$PORT" > "$D/port"
grep -q "# abcitrain-ssh-test$" /etc/hosts ||
  printf '127.0.0.2 dsnode1 # abcitrain-ssh-test\n127.0.0.3 dsnode2 # abcitrain-ssh-test\n' >> /etc/hosts
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
for _ in $(seq 1 50); do [ -s "$D/sshd.pid" ] && break; sleep 0.1; done
ssh -F "$D/ssh_config" -p "$PORT" dsnode2 true
ssh -F "$D/ssh_config" -p "$PORT" dsnode1 true
echo "sshd up on dsnode1 and dsnode2, port $PORT (pid $(cat "$D/sshd.pid"))"
