"""`abcitrain import SCRIPT`: realistic ABCI 3.0, ABCI 2.0 and Slurm scripts (written for
these tests, tests/data/scripts/) become specs whose directives say what the script's did and
whose ``script:`` holds every other line verbatim; each note names its line; refusals name
theirs and exit 2. (tests/test_import_equivalence.py runs a corpus both ways.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, cli

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec

SCRIPTS = DATA / "scripts"


def _import(name: str, *more: str, ok: bool | None = True) -> tuple[dict[str, Any], str]:
    result = cli("import", str(SCRIPTS / name), *more, ok=ok)
    return yaml.safe_load(result.stdout), result.stderr


def test_abci3_multi_node_script_becomes_a_spec_keeping_its_body() -> None:
    spec, said = _import("abci3-deepspeed.sh")
    assert spec["name"] == "0150_pretrain" and spec["resource"] == "rt_HF"
    assert (spec["nodes"], spec["ranks_per_node"], spec["threads_per_rank"]) == (2, 8, 12)
    assert spec["walltime"] == "12:00:00" and spec["group"] == "gaa50000"
    assert spec["extra_directives"] == ["-m abe", "-v USE_SSH=1"]
    assert "error" not in spec                       # -j oe: one file, as abcitrain writes
    text = (SCRIPTS / "abci3-deepspeed.sh").read_text()
    assert spec["script"].startswith("# Multi-node DeepSpeed")
    for line in ("export HF_HOME=$PBS_LOCALDIR/hf", "ulimit -l unlimited",
                 "mpirun -np 16 --hostfile $PBS_NODEFILE --map-by ppr:8:node python train.py "
                 "--config cfg.yaml"):
        assert line in spec["script"] and line in text
    assert "faithful" in said
    plan = plan_job(*parse_spec(spec))
    assert plan.errors == []
    assert "-l select=2:mpiprocs=8:ompthreads=12" in plan.directives


def test_a_reservation_script_keeps_its_queue_and_rtype() -> None:
    spec, _ = _import("abci3-reservation.sh")
    assert spec["reservation"] == "R1234" and spec["resource"] == "rt_HF"
    assert spec["script"].rstrip().endswith("python sft.py 2>&1 | tee logs/sft.log")
    plan = plan_job(*parse_spec(spec))
    assert [d for d in plan.directives if d.startswith("-v")] == ["-v RTYPE=rt_HF,USE_SSH=1"]
    assert "-q R1234" in plan.directives


def test_what_cannot_come_along_is_said_line_by_line() -> None:
    spec, said = _import("slurm-ddp.sh")
    assert "differs: line 9: '--comment=two words' is not carried" in said
    assert "differs at 1 place" in said
    assert spec["extra_directives"] == ["--mail-type=END"]
    assert spec["output"] == "logs/{name}-{job_id}.out" and spec["group"] == "proj1"
    assert spec["script"] == "module purge\nmodule load cuda\nsrun python ddp.py --epochs 3\n"


def test_a_spec_that_needs_a_key_is_still_written_and_says_which(tmp_path: Path) -> None:
    out = tmp_path / "sweep.yaml"
    result = cli("import", str(SCRIPTS / "abci2-sweep.sh"), "-o", str(out), ok=None)
    assert result.exit_code == 2 and "group" in result.stderr      # ABCI 2.0: qsub -g
    assert out.exists() and "was written as read" in result.stderr
    spec = yaml.safe_load(out.read_text())
    assert spec["array"] == "1-10" and spec["output"] == "logs/{name}.o{job_id}.{array_index}"


def test_an_abci2_script_moves_to_abci3_saying_what_changed() -> None:
    spec, said = _import("abci2-sweep.sh", "--to", "abci3", "--group", "gaa50000")
    assert spec["cluster"] == "abci3" and spec["resource"] == "rt_HF"
    assert spec["walltime"] == "24:00:00" and spec["array"] == "1-10"
    assert "extra_directives" not in spec                    # -l USE_SSH=1 is Grid Engine's
    assert "resource rt_F (4 x V100 per node) -> rt_HF (8 x H200 per node)" in said
    assert "left out '-l USE_SSH=1'" in said
    assert "price: 1.20 points per node-hour on abci2 (2024-10-31), 7.50 on abci3" in said
    assert "left out output" in said                  # PBS writes no job id into -o
    # the body stays as written; what it reads of Grid Engine is named, line by line
    assert "export SINGULARITY_TMPDIR=$SGE_LOCALDIR" in spec["script"]
    assert "differs: line 13: $SGE_LOCALDIR is uge's and is not set on abci3" in said
    assert "differs: line 12: module singularitypro is not one abci3 lists" in said
    assert not plan_job(*parse_spec(spec)).errors


def test_a_log_folder_stays_a_folder_where_the_scheduler_names_the_file(
        tmp_path: Path) -> None:
    """`-o logs/` on PBS and Grid Engine holds the scheduler's own name; moved to Slurm,
    which would open the folder as a file, the same name is spelled out."""
    script = tmp_path / "fold.sh"
    script.write_text("#!/bin/bash\n#PBS -q rt_HF\n#PBS -l select=1\n#PBS -P g1\n"
                      "#PBS -l walltime=1:00:00\n#PBS -o logs/\n#PBS -j oe\npython x.py\n")
    spec, _ = _import(str(script))
    assert spec["output"] == "logs/"
    plan = plan_job(*parse_spec(spec))
    assert "-o logs/" in plan.directives and not plan.errors
    moved, said = _import(str(script), "--to", "slurm")
    assert moved["output"] == "logs/{name}.o{job_id}"
    assert "output 'logs/' -> 'logs/{name}.o{job_id}': slurm writes to a file" in said
    assert "--output=logs/%x.o%j" in plan_job(*parse_spec(moved)).directives
    # a folder named straight in a Slurm spec is refused before anything is submitted
    bad = plan_job(*parse_spec({**moved, "output": "logs/"}))
    assert [p.where for p in bad.errors] == ["output"]
    assert "name the file, e.g. logs/{name}.o{job_id}" in bad.errors[0].message


def test_modules_the_target_lists_pass_and_versions_it_lacks_are_named(tmp_path: Path) -> None:
    script = tmp_path / "mods.sh"
    script.write_text("#!/bin/bash\n#$ -l rt_F=1\n#$ -l h_rt=1:00:00\n#$ -cwd\n"
                      "module load cuda/11.8/11.8.0 hpcx python/3.12/3.12.9\npython x.py\n")
    result = cli("import", str(script), "--to", "abci3", "--group", "g1", ok=None)
    said = result.stderr
    assert "line 5: module cuda/11.8/11.8.0 is not one abci3 lists (it has cuda, " \
        "cuda/12.6/12.6.1)" in said
    assert "module hpcx " not in said and "module python/3.12/3.12.9" not in said


def test_a_file_without_directives_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain.sh").write_text("#!/bin/bash\necho hi\n")
    result = cli("import", str(tmp_path / "plain.sh"), ok=None)
    assert result.exit_code == 2 and "no directive line of a known scheduler" in result.output
    assert all(p in result.output for p in ("#PBS", "#$", "#SBATCH"))


@pytest.mark.parametrize(("lines", "expect"), [
    (["#PBS -l select=1 \\", "#PBS -l walltime=1:00:00"], "line 3: the line continues"),
    (["#PBS -o $PBS_JOBID.out"], "line 3: '-o $PBS_JOBID.out' sets output to a path"),
    (["#PBS -N $JOB"], "line 3: '-N $JOB' sets name to a name abcitrain cannot write"),
    (["#PBS -q casper"], "line 3: '-q casper' sets resource in a form abcitrain does not "
                         "read for abci3 (its resource types: rt_HF, rt_HG, rt_HC)"),
])
def test_every_refusal_names_its_line_and_why(tmp_path: Path, lines: list[str],
                                              expect: str) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/bash\n#PBS -P g1\n" + "\n".join(lines) + "\necho hi\n")
    out = tmp_path / "bad.yaml"
    result = cli("import", str(script), "-o", str(out), ok=None)
    assert result.exit_code == 2 and expect in result.output, result.output
    assert not out.exists()                    # nothing written for a refused script
    assert "Traceback" not in result.output


def test_error_to_dev_null_and_no_join_are_kept(tmp_path: Path) -> None:
    script = tmp_path / "quiet.sh"
    script.write_text("#!/bin/bash\n#PBS -q rt_HF\n#PBS -l select=1\n#PBS -P g1\n"
                      "#PBS -l walltime=1:00:00\n#PBS -o /dev/null\n#PBS -e /dev/null\n"
                      "python x.py\n")
    spec, said = _import(str(script))
    assert "faithful" in said
    assert (spec["output"], spec["error"]) == ("/dev/null", "/dev/null")
    plan = plan_job(*parse_spec(spec))
    assert plan.errors == [] and "-e /dev/null" in plan.directives
    assert "-j oe" not in plan.directives
    script.write_text(script.read_text().replace("#PBS -o /dev/null\n#PBS -e /dev/null\n", ""))
    spec, _ = _import(str(script))
    # PBS's own NAME.eSEQ beside the output: no -e (a folder would be JOBID.ER), no join
    assert spec["error"] == "{name}.e{job_id}"
    directives = plan_job(*parse_spec(spec)).directives
    assert not [d for d in directives if d.startswith(("-e", "-j"))], directives


def test_a_script_started_in_home_is_started_there_again() -> None:
    """PBS starts a job in $HOME: the imported job too (workdir ~), before the body's own
    cd $PBS_O_WORKDIR; Slurm starts it in the submit folder."""
    spec, _ = _import("abci3-reservation.sh")
    assert spec["workdir"] == "~"
    assert 'cd -- "${HOME}"' in plan_job(*parse_spec(spec)).script
    slurm, _ = _import("slurm-ddp.sh")
    assert "workdir" not in slurm


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 5400), ("10:30", 630), ("02:00:00", 7200), ("2-12", 216000), ("1-00:30", 88200),
    ("1-02:03:04", 93784)])
def test_sbatch_time_forms(text: str, seconds: int) -> None:
    """sbatch(1): a bare number is minutes, two fields minutes:seconds."""
    from abcitrain.backends.slurm import slurm_time

    assert slurm_time(text) == seconds
