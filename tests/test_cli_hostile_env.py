"""Every command that prints, in the two places a newcomer's shell puts it by accident: into
a pipe whose reader goes away (`abcitrain ... | head -1`), and in a read-only folder (the
project and the state folder mounted read-only, in a mount namespace of the test's own).
No traceback and no crash file, ever; a command that must write says which folder, in one
error, and submits nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = ("#!/bin/bash\n#PBS -q rt_HF\n#PBS -l select=1\n#PBS -l walltime=1:00:00\n"
          "#PBS -P gaa50000\npython train.py\n")
COMMANDS = [
    ["--help"], ["clusters"], ["clusters", "--json"], ["clusters", "show", "abci3"],
    ["memory", "llama2-7b", "--gpus-per-node", "8"], ["memory", "llama2-7b", "--json"],
    ["render", "job.yaml"], ["check", "job.yaml"], ["check", "--json", "job.yaml"],
    ["submit", "--dry-run", "job.yaml"], ["submit", "--dry-run", "--json", "job.yaml"],
    ["status"], ["status", "--json"], ["points"], ["points", "--json"],
    ["points", "quote", "job.yaml"], ["import", "train.sh", "--to", "abci3"],
    ["reserve", "plan", "--cluster", "abci3", "--type", "rt_HF", "--nodes", "2", "--days", "1",
     "--start", "2030-06-03"],
    ["board", "--group", "gaa50000", "--json"],
]
#: Commands that must write to do their work: refused in a read-only folder, in one line.
WRITERS = [["submit", "job.yaml"], ["render", "job.yaml", "-o", "job.sh"],
           ["board", "--group", "gaa50000", "--html", "board.html"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a local job, an ABCI script, and state: one job really submitted."""
    (tmp_path / "job.yaml").write_text(yaml.safe_dump({
        "name": "hello", "cluster": "local", "resource": "cpu", "walltime": "0:05:00",
        "command": ["true"]}))
    (tmp_path / "train.sh").write_text(SCRIPT)
    done = subprocess.run(_argv(["submit", "job.yaml"]), cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return tmp_path


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(folder), "ABCITRAIN_DATA_DIR": str(folder / "data"),
            "ABCITRAIN_LOCAL_SPOOL": str(folder / "spool")}


def _argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "abcitrain", *args]


def _clean(err: str, folder: Path) -> None:
    assert "Traceback" not in err and "failed unexpectedly" not in err, err
    assert not (folder / "data" / "crashes").exists()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_output_into_a_pipe_whose_reader_goes_away(args: list[str], project: Path) -> None:
    proc = subprocess.Popen(_argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(project), cwd=project)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()                                  # the reader goes away
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    _clean(err, project)


def test_every_command_in_a_read_only_folder(project: Path) -> None:
    """The project folder (holding the state folder) bind-mounted read-only over itself in a
    private mount namespace (`unshare -m`, root): readers still read; writers are refused in
    one error naming the folder; nothing is submitted."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private read-only mount")
    runs = [*COMMANDS, *WRITERS]
    # cd after mounting: a working folder entered before would still be the writable one
    lines = [f"mount --bind {project} {project} && mount -o remount,bind,ro {project} && "
             f"cd {project} || exit 9"]
    for i, args in enumerate(runs):
        quoted = " ".join(f"'{a}'" for a in _argv(args))
        lines.append(f"{quoted} >{project}.out{i} 2>{project}.err{i}; "
                     f"echo $? > {project}.rc{i}")
    done = subprocess.run(["unshare", "-m", "bash", "-c", "\n".join(lines)], cwd=project,
                          env=_env(project), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    jobs_before = sorted((project / "spool" / "jobs").iterdir())
    refused: list[str] = []
    for i, args in enumerate(runs):
        err = Path(f"{project}.err{i}").read_text()
        code = int(Path(f"{project}.rc{i}").read_text())
        _clean(err, project)
        if "--json" in args:            # asked for JSON: the refusal is JSON on stdout
            err += Path(f"{project}.out{i}").read_text()
        if args in WRITERS:
            assert code in (1, 2) and "cannot write" in err, (args, code, err)
        elif code != 0:
            # the state files open for writing (status settles what it learns): refused in
            # one error that names the read-only state file and the way out
            assert code == 1 and f"cannot write {project / 'data'}" in err \
                and "ABCITRAIN_DATA_DIR" in err, (args, code, err)
            refused.append(args[0])
    # what needs no state runs as usual in a read-only folder
    assert set(refused) <= {"status", "points", "check", "board"}, refused
    assert sorted((project / "spool" / "jobs").iterdir()) == jobs_before     # nothing ran
