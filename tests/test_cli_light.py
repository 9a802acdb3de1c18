"""The CLI's cold path stays light: no heavy module is imported to render or check a job.

(Its speed is measured by bench/cold_start.py, not here: timings are not test assertions.)
"""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

HEAVY = ("torch", "deepspeed", "paramiko", "matplotlib", "transformers", "pydantic")


def test_render_and_check_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from abcitrain.cli import cli\n"
        "for verb in ('render', 'check'):\n"
        "    try:\n"
        "        cli([verb, 'jobs/hello-local.yaml'], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout
