"""The CLI's cold path stays light: no heavy module is imported to render, check, submit or
follow a job.

(Its speed is measured by bench/cold_start.py, not here: timings are not test assertions.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

HEAVY = ("torch", "deepspeed", "paramiko", "matplotlib", "transformers", "pydantic", "mlflow",
         "uvicorn", "abcitrain.board")


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


def test_upload_progress_is_a_line_per_tenth_when_stderr_is_not_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    from abcitrain.cli.submitting import _progress

    total = 1_000_000_000
    for step in range(0, total + 1, total // 400):          # 401 updates
        _progress("big.bin", step, total)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].endswith("1000 of 1000 MB"), lines


@pytest.mark.parametrize("args", [["clusters"], ["clusters", "show", "abci3"],
                                  ["memory", "llama2-7b", "--gpus-per-node", "8"]])
def test_output_into_a_pipe_that_closes_ends_quietly(args: list[str], tmp_path: Path) -> None:
    """`abcitrain ... | head -1`: no BrokenPipeError traceback, no crash file."""
    env = {**os.environ, "HOME": str(tmp_path), "ABCITRAIN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "abcitrain", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()                                  # the reader goes away
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "failed unexpectedly" not in err, err
    assert not (tmp_path / "data" / "crashes").exists()
