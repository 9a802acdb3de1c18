"""Every command over a corpus of careless and hostile inputs: each gets one clear message and
exit status 2, never a traceback and never the last-resort "failed unexpectedly" line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import cli

GOOD = {"name": "t", "cluster": "local", "resource": "cpu", "walltime": 60,
        "command": ["echo", "hi"]}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "garbage.txt").write_text("%%% not show_point %%%\n")
    (tmp_path / "afile").write_text("x")
    return tmp_path


CORPUS = [
    ["check", "binary.yaml"], ["check", "latin1.yaml"], ["check", "list.yaml"],
    ["check", "empty.yaml"], ["render", "binary.yaml"], ["submit", "binary.yaml"],
    ["submit", "--dry-run", "latin1.yaml"], ["plan", "binary.yaml"],
    ["render", "ok.yaml", "-o", "no/such/folder/x.sh"],
    ["render", "ok.yaml", "-o", "afile/x.sh"],
    ["points", "--plot", "no/such/folder/x.png"], ["points", "--plot", "x.txt"],
    ["points", "sync", "--cluster", "abci3", "--file", "garbage.txt"],
    ["points", "import", "garbage.txt", "--format", "sacct", "--cluster", "slurm"],
    ["memory", "1e308"], ["memory", "-5"], ["memory", "nan"], ["memory", "no-such-model"],
    ["memory", "7e9", "--cluster", "abci3"],
    ["reserve", "plan", "--cluster", "abci3", "--type", "rt_HF", "--nodes", "1", "--days",
     "99999999999", "--start", "2027-01-10"],
    ["reserve", "plan", "--cluster", "slurm", "--type", "gpu", "--nodes", "1", "--hours",
     "1e9", "--start", "now"],
    ["reserve", "plan", "--cluster", "slurm", "--type", "gpu", "--nodes", "1", "--hours",
     "-1", "--start", "now"],
    ["reserve", "plan", "--cluster", "nosuch", "--type", "gpu", "--nodes", "1", "--days",
     "1", "--start", "now"],
    ["reserve", "show", "--rf", "--cluster", "abci3"],
    ["clusters", "show", "nosuch"], ["logs", "no-such-job"], ["cancel", "no-such-job"],
    ["status", "no-such-job"],
]


@pytest.mark.parametrize("args", CORPUS, ids=[" ".join(a)[:60] for a in CORPUS])
def test_bad_input_is_one_clear_message_and_exit_2(args: list[str], files: Path) -> None:
    result = cli(*args, ok=None)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "failed unexpectedly" not in result.output
    assert result.output.strip(), "no message at all"
    assert len(result.output) < 4000, "the message should be short"
