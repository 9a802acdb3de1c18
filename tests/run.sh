#!/bin/bash
# The whole test suite, on a fresh Debian machine or a developer's: installs what it needs
# (Debian packages for the real schedulers when run as root, a virtual environment with the
# project), then lints, type-checks and runs every test. The tests start and stop Slurm and
# Grid Engine themselves (tests/infra). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== Debian packages for the real schedulers"
  bash tests/infra/packages.sh
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
.venv/bin/python -m pytest "$@"
