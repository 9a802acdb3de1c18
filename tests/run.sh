#!/bin/bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what it needs
# (Debian packages for the real schedulers when run as root, a virtual environment with the
# project), then lints, type-checks and runs every test. The tests start and stop Slurm and
# Grid Engine themselves (tests/infra). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PBS_BUILD_LOG=${TMPDIR:-/tmp}/abcitrain-openpbs-build.log
PBS_BUILD_PID=
# never leave the background build behind: wait for it when this script ends, however
trap '[ -z "$PBS_BUILD_PID" ] || wait "$PBS_BUILD_PID" || true' EXIT
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== Debian packages for the real schedulers"
  bash tests/infra/packages.sh
  # OpenPBS is built from source on a fresh machine (minutes of compiling): started now, in
  # the background, it overlaps the installs, the linters and the tests that need no PBS;
  # the PBS fixture waits for it (openpbs-build.sh holds a lock) and reports its failure
  echo "== OpenPBS build, in the background (log: $PBS_BUILD_LOG)"
  bash tests/infra/openpbs-build.sh >"$PBS_BUILD_LOG" 2>&1 &
  PBS_BUILD_PID=$!
fi
echo "== virtual environment (.venv)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first, pinned: the CPU build this machine offers; nothing later may replace it.
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,train]'
# bytecode for the project's modules, as a wheel's install writes it: an editable install
# leaves none, and where PYTHONDONTWRITEBYTECODE is set every `python -m abcitrain...` the
# tests start (schedulers' commands, jobs, ranks) would compile them all again
.venv/bin/python -m compileall -q abcitrain >/dev/null
echo "== ruff"
.venv/bin/ruff check abcitrain tests bench jobs
echo "== mypy"
# mypy's cache in the user's cache folder, not the checkout: a fresh clone then re-checks
# only what changed (each module is validated by its source's hash), not the whole
# standard library again (about 50 s here)
.venv/bin/mypy --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/abcitrain/mypy"
echo "== pytest"
# Two workers (pytest-xdist): while one waits on a scheduler (a queue, PBS's walltime check,
# a job's start) the other trains or computes. Tests of the real clusters stay in one worker,
# which starts and owns them (tests/conftest.py: xdist_group). ABCITRAIN_TEST_WORKERS=0 runs
# everything in this process.
.venv/bin/python -m pytest -n "${ABCITRAIN_TEST_WORKERS:-2}" --dist loadgroup "$@"
