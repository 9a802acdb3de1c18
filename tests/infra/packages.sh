#!/bin/bash
# Install the Debian packages the integration tests need (root): Slurm + munge + slurmdbd with
# MariaDB, Son of Grid Engine, the tools for network namespaces, and OpenSSH, pdsh and Open MPI
# for the launchers that cross nodes by ssh, and a C/C++ compiler (DeepSpeed builds its CPU
# ops; the memory tests build tests/alloc_bytes.c), and chromium with its driver (the board's
# page is tested in a real headless browser). Safe to run again.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
H=$(hostname)
getent hosts "$H" >/dev/null || echo "127.0.1.1 $H" >> /etc/hosts
if ! dpkg -s gridengine-master >/dev/null 2>&1; then
  debconf-set-selections <<SEL
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string $H
SEL
fi
apt_install slurmctld slurmd slurm-client munge slurmdbd mariadb-server \
  gridengine-master gridengine-exec gridengine-client iproute2 util-linux bc \
  openssh-server openssh-client pdsh openmpi-bin gcc g++ libc6-dev \
  chromium chromium-driver
