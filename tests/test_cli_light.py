"""The CLI's cold path stays light: no heavy module is imported to render, check, submit or
follow a job.

(Its speed is measured by bench/cold_start.py, not here: timings are not test assertions.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

HEAVY = ("torch", "deepspeed", "paramiko", "matplotlib", "transformers", "pydantic", "mlflow")


def test_render_check_submit_and_status_import_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from abcitrain.cli import cli\n"
        "runs = [['render', 'jobs/hello-local.yaml'], ['check', 'jobs/hello-local.yaml'],\n"
        "        ['submit', '--dry-run', 'jobs/hello-local.yaml'], ['status']]\n"
        "for argv in runs:\n"
        "    try:\n"
        "        cli(argv, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (argv, exc.code)\n"
        "    print('RAN', argv[0])\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n")
    env = {**os.environ, "ABCITRAIN_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("RAN")] == \
        ["RAN render", "RAN check", "RAN submit", "RAN status"]
    assert "HEAVY []" in out.stdout, out.stdout
