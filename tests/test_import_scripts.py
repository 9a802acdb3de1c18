"""`abcitrain import SCRIPT`: realistic ABCI 3.0, ABCI 2.0 and Slurm scripts (written for
these tests, tests/data/scripts/) become specs; rendering a spec and reading the result back
gives the same scheduler-visible fields; what cannot come along is listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, cli

from abcitrain.batch.importer import read_script, to_mapping
from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.profiles import load_profile

SCRIPTS = DATA / "scripts"
#: The keys a scheduler sees (the directives), compared after a round trip.
DIRECTIVE_KEYS = ("name", "resource", "nodes", "ranks_per_node", "threads_per_rank",
                  "walltime", "group", "array", "output", "reservation", "extra_directives")


def _import(name: str, *more: str) -> tuple[dict[str, Any], str]:
    result = cli("import", str(SCRIPTS / name), *more, ok=None)
    return yaml.safe_load(result.stdout), result.output


@pytest.mark.parametrize(("script", "cluster", "group"), [
    ("abci3-deepspeed.sh", "abci3", None), ("abci3-reservation.sh", "abci3", None),
    ("abci2-sweep.sh", "abci2", "gaa50000"), ("slurm-ddp.sh", "slurm", None)])
def test_a_script_round_trips_through_a_spec(script: str, cluster: str,
                                             group: str | None) -> None:
    profile = load_profile(cluster)
    first = dict(to_mapping(read_script((SCRIPTS / script).read_text(), profile, "x")))
    if group:
        first["group"] = group
    plan = plan_job(*parse_spec(first))
    assert not plan.errors, plan.errors
    again = dict(to_mapping(read_script(plan.script, profile, "x")))
    if group:
        again["group"] = group
    for key in DIRECTIVE_KEYS:
        if key == "extra_directives":
            # the rendering adds what abcitrain writes for the type (Slurm's --exclusive)
            got, had = again.get(key) or [], first.get(key) or []
            assert [d for d in got if d in had] == had, (got, had)
            assert set(got) - set(had) <= set(plan.directives), (got, had)
            continue
        assert again.get(key) == first.get(key), (key, first.get(key), again.get(key))


def test_abci3_multi_node_script_becomes_a_spec() -> None:
    spec, out = _import("abci3-deepspeed.sh")
    assert spec["name"] == "0150_pretrain" and spec["resource"] == "rt_HF"
    assert (spec["nodes"], spec["ranks_per_node"], spec["threads_per_rank"]) == (2, 8, 12)
    assert spec["walltime"] == "12:00:00" and spec["group"] == "gaa50000"
    assert spec["modules"] == ["cuda/12.6", "hpcx/2.20"]
    assert spec["setup"] == {"activate": ".venv", "ulimit": {"l": "unlimited"},
                             "run": [["mkdir", "-p", "logs"]]}
    assert spec["env"]["HF_HOME"] == "${PBS_LOCALDIR}/hf"      # expanded when the job runs
    assert spec["command"][:5] == ["mpirun", "-np", "16", "--hostfile", "${PBS_NODEFILE}"]
    assert spec["extra_directives"] == ["-v USE_SSH=1", "-m abe"]
    assert "not carried" not in out


def test_a_reservation_script_keeps_its_queue_and_rtype() -> None:
    spec, _ = _import("abci3-reservation.sh")
    assert spec["reservation"] == "R1234" and spec["resource"] == "rt_HF"
    assert spec["command"] == ["bash", "-c", "python sft.py 2>&1 | tee logs/sft.log"]
    plan = plan_job(*parse_spec(spec))
    assert [d for d in plan.directives if d.startswith("-v")] == ["-v RTYPE=rt_HF,USE_SSH=1"]


def test_what_cannot_come_along_is_listed() -> None:
    spec, out = _import("slurm-ddp.sh")
    assert "not carried" in out and "--comment=two words" in out and "quoted value" in out
    assert spec["extra_directives"] == ["--mail-type=END"]
    assert spec["setup"] == {"module_purge": True} and spec["output"] == \
        "logs/{name}-{job_id}.out"
    missing = cli("import", str(SCRIPTS / "abci2-sweep.sh"), ok=None)
    assert missing.exit_code == 2 and "group" in missing.output     # ABCI 2.0: qsub -g


def test_an_abci2_script_moves_to_abci3_saying_what_changed() -> None:
    spec, out = _import("abci2-sweep.sh", "--cluster", "abci3", "--group", "gaa50000")
    assert spec["cluster"] == "abci3" and spec["resource"] == "rt_HF"
    assert spec["walltime"] == "24:00:00" and spec["array"] == "1-10"
    assert "extra_directives" not in spec                    # -l USE_SSH=1 is Grid Engine's
    assert "changed: resource rt_F (4 x V100 per node) -> rt_HF (8 x H200 per node)" in out
    assert "changed: left out '-l USE_SSH=1'" in out
    assert "price: 1.20 points per node-hour on abci2 (2024-10-31), 7.50 on abci3" in out
    assert "left out output" in out                  # PBS writes no job id into -o
    assert spec["env"] == {"SINGULARITY_TMPDIR": "${SGE_LOCALDIR}", "TMP": "${SGE_LOCALDIR}"}
    assert not plan_job(*parse_spec(spec)).errors


def test_a_file_without_directives_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain.sh").write_text("#!/bin/bash\necho hi\n")
    result = cli("import", str(tmp_path / "plain.sh"), ok=None)
    assert result.exit_code == 2 and "no directive line of a known scheduler" in result.output
    assert all(p in result.output for p in ("#PBS", "#$", "#SBATCH"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 5400), ("10:30", 630), ("02:00:00", 7200), ("2-12", 216000), ("1-00:30", 88200),
    ("1-02:03:04", 93784)])
def test_sbatch_time_forms(text: str, seconds: int) -> None:
    """sbatch(1): a bare number is minutes, two fields minutes:seconds."""
    from abcitrain.backends.slurm import slurm_time

    assert slurm_time(text) == seconds
