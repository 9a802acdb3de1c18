"""``login.mode: auto`` (and ``local``) asks the submit program on PATH what it is: PBS's and
Grid Engine's commands share their names, and the abci3 profile must never run Grid Engine's
qsub as if it were PBS's. The answers below are the first lines each real program printed on
this project's machines (OpenPBS 23.06 ``qsub --version``, Son of Grid Engine 8.1.9 ``qsub
-help``, Slurm 22.05 ``sbatch --version``), replayed by stand-in programs on PATH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import cli

ANSWERS = {
    "pbs": ("qsub", "pbs_version = 23.06.06"),
    "uge": ("qsub", "SGE 8.1.9\nusage: qsub [options]"),
    "slurm": ("sbatch", "slurm-wlm 22.05.8"),
}


def _install(bin_dir: Path, kind: str) -> None:
    program, answer = ANSWERS[kind]
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / program
    # a stand-in that answers what the real one printed, and records any submission
    stub.write_text(f"#!/bin/bash\n/bin/cat <<'EOF'\n{answer}\nEOF\n"
                    f'echo "$@" >> "{bin_dir}/calls.log"\n')
    stub.chmod(0o755)


@pytest.fixture
def only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the stand-ins (and the system's basic tools)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"name": "j", "cluster": "abci3", "resource": "rt_HF",
                                    "walltime": "0:05:00", "group": "g1",
                                    "command": ["true"]}))
    return path


def test_abci3_refuses_grid_engines_qsub_with_one_clear_message(tmp_path: Path,
                                                                 only: Path) -> None:
    _install(only, "uge")
    result = cli("submit", str(_spec(tmp_path)), ok=None)
    assert result.exit_code == 2, result.output
    assert "is not pbs's ('SGE 8.1.9', a uge scheduler's)" in result.output
    assert "login.mode to ssh" in result.output
    # asked what it is (PBS's question, then Grid Engine's), and nothing submitted
    assert (only / "calls.log").read_text().split() == ["--version", "-help"]


def test_pbss_own_qsub_is_used(tmp_path: Path, only: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    _install(only, "pbs")
    monkeypatch.setenv("PATH", str(only))         # no other qsub anywhere
    from abcitrain.profiles import load_profile
    from abcitrain.service.identity import installed, mismatch

    assert installed("qsub") == ("pbs", "pbs_version = 23.06.06")
    assert mismatch(load_profile("abci3")) is None
    assert "is not uge's" in str(mismatch(load_profile("abci2")))


def test_the_answer_is_kept_per_program_until_it_changes(only: Path) -> None:
    from abcitrain.service.identity import installed

    _install(only, "uge")
    assert installed("qsub") == ("uge", "SGE 8.1.9")
    assert installed("qsub") == ("uge", "SGE 8.1.9")
    assert (only / "calls.log").read_text().split() == ["--version", "-help"]   # asked once
    _install(only, "pbs")                                             # another program now
    assert installed("qsub") == ("pbs", "pbs_version = 23.06.06")


def test_clusters_says_where_each_profile_would_talk_to(only: Path) -> None:
    _install(only, "uge")
    _install(only, "slurm")
    rows = {r["name"]: r["talks_to"] for r in json.loads(cli("clusters", "--json").output)}
    assert rows["abci2"] == "here: SGE 8.1.9"
    assert rows["abci3"] == "WRONG: the qsub here is uge's (SGE 8.1.9)"
    assert rows["slurm"] == "here: slurm-wlm 22.05.8"
    assert rows["local"] == "this machine"


def test_the_schedulers_own_commands_later_on_path_are_used_by_their_folder(
        tmp_path: Path, only: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Grid Engine's qsub first, PBS's later (a PBS job's PATH on a machine with both clients:
    /etc/profile.d/pbs.sh appends /opt/pbs/bin): abci3 runs PBS's, by its full path, and
    abci2 still Grid Engine's."""
    _install(only, "uge")
    pbs_bin = tmp_path / "pbs-bin"
    _install(pbs_bin, "pbs")
    monkeypatch.setenv("PATH", f"{only}:/usr/bin:/bin:{pbs_bin}")
    from abcitrain.profiles import load_profile
    from abcitrain.service.common import SchedulerHere
    from abcitrain.service.identity import mismatch, own_folder

    assert own_folder(load_profile("abci3")) == str(pbs_bin)
    assert mismatch(load_profile("abci3")) is None
    assert own_folder(load_profile("abci2")) is None            # its own comes first
    done = SchedulerHere(load_profile("abci3")).run(["qsub", "job.sh"])
    assert done.returncode == 0 and "pbs_version" in done.stdout
    assert (pbs_bin / "calls.log").read_text().split() == ["--version", "job.sh"]
    assert (only / "calls.log").read_text().split() == ["--version", "-help"]   # only asked
    rows = {r["name"]: r["talks_to"] for r in json.loads(cli("clusters", "--json").output)}
    assert rows["abci3"] == (f"here: pbs_version = 23.06.06 ({pbs_bin}; uge's qsub comes "
                             "first on PATH)")
    assert rows["abci2"] == "here: SGE 8.1.9"
