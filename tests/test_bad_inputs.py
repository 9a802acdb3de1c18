"""Every command over a corpus of careless and hostile inputs, run as a real subprocess
(``python -m abcitrain``): each gets one clear message and exit status 2, never a traceback
and never the last-resort "failed unexpectedly" line, and nothing is submitted, charged or
written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

GOOD = {"name": "t", "cluster": "local", "resource": "cpu", "walltime": 60,
        "command": ["echo", "hi"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("corpus")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "garbage.txt").write_text("%%% not show_point %%%\n")
    (tmp_path / "afile").write_text("x")
    # a "billion laughs": nine lines that expand to 9^9 values
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "deep.yaml").write_text("[" * 5000)
    (tmp_path / "huge.yaml").write_text("name: " + "x" * (2 * 1024 * 1024) + "\n")
    (tmp_path / "bigarg.yaml").write_text(yaml.safe_dump({**GOOD, "command": [
        "echo", "x" * 200_000]}))
    (tmp_path / "longname.yaml").write_text(yaml.safe_dump({**GOOD, "cluster": "y" * 500_000}))
    (tmp_path / "dupkey.yaml").write_text("name: t\ncluster: local\nresource: cpu\n"
                                          "walltime: 60\nwalltime: 99999\n"
                                          "command: [echo, hi]\n")
    (tmp_path / "dupflow.yaml").write_text("{name: t, name: u, cluster: local}\n")
    for name, extra in (("out-dash", {"output": "-rf"}), ("resv-dash", {"reservation": "-rf"}),
                        ("dep-dash", {"depends_on": ["--help"]}),
                        ("dir-help", {"extra_directives": ["--help"]}),
                        # a file stands where the output's folder would be made
                        ("out-in-file", {"output": "afile/logs/{name}.o{job_id}"})):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**GOOD, **extra}))
    return tmp_path


CORPUS = [
    ["check", "binary.yaml"], ["check", "latin1.yaml"], ["check", "list.yaml"],
    ["check", "empty.yaml"], ["render", "binary.yaml"], ["submit", "binary.yaml"],
    ["check", "bomb.yaml"], ["check", "deep.yaml"], ["check", "huge.yaml"],
    ["check", "bigarg.yaml"], ["submit", "bigarg.yaml"], ["check", "longname.yaml"],
    ["check", "dupkey.yaml"], ["check", "dupflow.yaml"], ["check", "out-dash.yaml"],
    ["check", "resv-dash.yaml"], ["check", "dep-dash.yaml"], ["check", "dir-help.yaml"],
    ["status", "-n", "-5"], ["logs", "1", "--task", "3"],
    ["submit", "--dry-run", "latin1.yaml"], ["plan", "binary.yaml"],
    ["render", "ok.yaml", "-o", "no/such/folder/x.sh"],
    ["render", "ok.yaml", "-o", "afile/x.sh"],
    ["submit", "--dry-run", "out-in-file.yaml"],
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
    ["reserve", "show", "--cluster", "slurm", "--", "-rf"],
    ["reserve", "cancel", "--cluster", "slurm", "--", "--help"],
    ["clusters", "show", "nosuch"], ["logs", "no-such-job"], ["cancel", "no-such-job"],
    ["status", "no-such-job"],
]


@pytest.mark.parametrize("args", CORPUS, ids=[" ".join(a)[:60] for a in CORPUS])
def test_bad_input_is_one_clear_message_and_exit_2(args: list[str], corpus: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    done = subprocess.run([sys.executable, "-m", "abcitrain", *args], capture_output=True,
                          text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, output)
    assert "Traceback" not in output and "failed unexpectedly" not in output
    assert done.stderr.strip(), "no message at all"
    assert len(output) < 4000, "the message should be short"
    # nothing submitted, charged or recorded: abcitrain's data folder was never created
    assert not Path(os.environ["ABCITRAIN_DATA_DIR"]).exists()


@pytest.mark.parametrize(("args", "spec", "said"), [
    (["sumbit", "job.yaml"], None, "no such command 'sumbit' (did you mean 'submit'?)"),
    (["check", "job.yaml"], {"cluster": "abci33"}, "unknown cluster 'abci33' (did you mean "
                                                   "'abci3'?)"),
    (["check", "job.yaml"], {"cluster": "abci3", "resource": "rt_HFF", "group": "g"},
     "'rt_HFF' is not a resource type of cluster 'abci3' (did you mean 'rt_HF'?)"),
    (["points", "--group", "team", "--no-refresh"], None, "no such group"),
], ids=["command", "cluster", "resource", "group"])
def test_a_misspelt_name_gets_did_you_mean(args: list[str], spec: dict[str, str] | None,
                                           said: str, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({**GOOD, **(spec or {})}))
    env = {**os.environ, "HOME": str(tmp_path), "ABCITRAIN_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "abcitrain", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_output_folder_a_file_stands_in_is_refused_before_anything_is_submitted(
        tmp_path: Path) -> None:
    """The job's log folder is made at submission; where a file is in its way the submit
    says so (exit 2) and the job store lists no job (the scheduler never had one)."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(
        {**GOOD, "output": "afile/logs/{name}.o{job_id}"}))
    env = {**os.environ, "HOME": str(tmp_path), "ABCITRAIN_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "abcitrain", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)

    done = run("submit", "job.yaml")
    assert done.returncode == 2, done.stderr
    assert f"output: its folder {tmp_path}/afile/logs cannot be made: {tmp_path}/afile is a " \
        "file" in done.stderr
    assert "Traceback" not in done.stderr
    listed = run("status", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed
