#!/bin/bash
# Build OpenPBS (PBS Professional's open-source core; a TEST dependency, AGPL-3.0, never part
# of abcitrain) from the unmodified upstream source kept in ../shared/vendor/openpbs/, and
# install it under /opt/pbs. The install is reused while its stamp (the tarball's sha256) is
# unchanged, so only a fresh machine pays the build (about 3 minutes on 2 cores). Built with
# the system python (/usr/bin/python3), never a virtual environment.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); . "$HERE/common.sh"
ROOT=$(cd "$HERE/../.." && pwd)
TARBALL=${OPENPBS_TARBALL:-$ROOT/../shared/vendor/openpbs/openpbs-cd7ab5e.tar.gz}
PREFIX=${PBS_PREFIX:-/opt/pbs}
STAMP=$PREFIX/.abcitrain-stamp
[ -f "$TARBALL" ] || { echo "no OpenPBS source at $TARBALL" >&2; exit 3; }
# One build at a time: tests/run.sh starts one in the background while the rest of CI runs,
# and the PBS fixture's openpbs-up.sh, asking for it later, waits here for that build to end
# and then finds its stamp (or builds again, and says why, if that build failed).
exec 9>/var/lock/abcitrain-openpbs-build.lock
flock 9
want="$(sha256sum "$TARBALL" | cut -d' ' -f1) prefix=$PREFIX"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$PREFIX/sbin/pbs_server.bin" ]; then
  echo "OpenPBS: reusing the install in $PREFIX"
  exit 0
fi
apt_install gcc g++ make libtool libtool-bin autoconf automake perl swig expat tcl tk \
  libhwloc-dev libx11-dev libxt-dev libedit-dev libical-dev libncurses-dev libexpat-dev \
  libssl-dev libxext-dev libxft-dev libcjson-dev python3-dev tcl-dev tk-dev \
  postgresql postgresql-contrib postgresql-server-dev-all
BUILD=/var/tmp/abcitrain-openpbs-build
rm -rf "$BUILD"; mkdir -p "$BUILD"
tar -xzf "$TARBALL" -C "$BUILD"
cd "$BUILD"/openpbs-*
start=$(date +%s)
# the system python, whatever python3 comes first on PATH (pyenv, a virtualenv)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin PYTHON=/usr/bin/python3
./autogen.sh >"$BUILD/autogen.log" 2>&1
./configure --prefix="$PREFIX" PYTHON=/usr/bin/python3 >"$BUILD/configure.log" 2>&1
make -j"$(nproc)" >"$BUILD/make.log" 2>&1 || { tail -40 "$BUILD/make.log" >&2; exit 1; }
rm -rf "$PREFIX"
make install >"$BUILD/install.log" 2>&1
# make install leaves these without their setuid bit: every non-root command would fail
chmod 4755 "$PREFIX/sbin/pbs_iff" "$PREFIX/sbin/pbs_rcp"
echo "$want" > "$STAMP"
echo "OpenPBS built and installed in $PREFIX in $(( $(date +%s) - start )) s"
rm -rf "$BUILD"
