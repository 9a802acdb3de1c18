"""Rendered scripts: golden files for every scheduler, and one job compared across them.

Accept an intended change with:  ABCITRAIN_UPDATE_GOLDEN=1 pytest tests/test_render.py
then review `git diff tests/golden` before committing.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, UPDATE_GOLDEN, cli

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec

GOLDEN = ROOT / "tests" / "golden"
BASE: dict[str, Any] = {
    "name": "llm-sft", "walltime": "2:30:00", "command": ["python", "jobs/train.py",
                                                           "--config", "configs/sft.yaml"],
    "modules": ["cuda/12.6", "hpcx/2.20"], "env": {"HF_HOME": "/scratch/hf cache"},
}
CASES: dict[str, dict[str, Any]] = {
    "abci3-array": dict(BASE, cluster="abci3", resource="rt_HF", nodes=2, group="gaa50000",
                        array="1-4"),
    "abci3-reservation": dict(BASE, cluster="abci3", resource="rt_HG", group="gaa50000",
                              reservation="R1234.pbs1"),
    "abci2-multinode": dict(BASE, cluster="abci2", resource="rt_F", nodes=4, group="gaa50000",
                            depends_on=["12345"], dependency="afterany",
                            extra_directives=["-l USE_SSH=1", "-v SSH_PORT=2299"]),
    "abci2-reservation": dict(BASE, cluster="abci2", resource="rt_AF", nodes=2,
                              group="gaa50000", reservation="12345"),
    "slurm-multinode": dict(BASE, cluster="slurm", resource="gpu", nodes=2, group="proj1",
                            output="logs/{name}-{job_id}.out", drop_directives=["--exclusive"]),
    "gridengine-multinode": dict(BASE, cluster="gridengine", resource="node", nodes=3,
                                 array="1-9:2"),
    "local": dict(BASE, cluster="local", resource="cpu", modules=[]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_script(case: str) -> None:
    spec, profile = parse_spec(CASES[case])
    plan = plan_job(spec, profile)
    assert plan.errors == []
    # the local scheduler runs under this interpreter, whose path differs between checkouts
    argv = [("PYTHON" if a == sys.executable else a) for a in plan.submit_argv("JOB.sh")]
    got = plan.script + f"# submit: {shlex.join(argv)}\n"
    path = GOLDEN / f"{case}.sh"
    if UPDATE_GOLDEN:
        # a file just written would only be compared with itself: say so instead of passing
        path.write_text(got)
        pytest.skip(f"golden file {path.name} rewritten, not compared: review git diff")
    assert path.is_file(), f"no golden file; run with ABCITRAIN_UPDATE_GOLDEN=1 to create {path}"
    assert got == path.read_text(), f"{case} changed; see the module docstring to accept it"
    check = subprocess.run(["bash", "-n"], input=plan.script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_one_job_means_the_same_on_every_scheduler() -> None:
    """The same spec, rendered for each backend, asks for the same things in each dialect."""
    expected = {
        "abci3": {"-N llm-sft", "-l walltime=02:30:00", "-l select=2", "-q rt_HF",
                  "-P gaa50000", "-J 1-3:1", "-W depend=afterok:9.pbs1"},
        "abci2": {"-N llm-sft", "-l h_rt=02:30:00", "-l rt_F=2", "-t 1-3",
                  "-hold_jid 9"},
        "slurm": {"--job-name=llm-sft", "--time=02:30:00", "--nodes=2", "--account=gaa50000",
                  "--array=1-3", "--dependency=afterok:9", "--gres=gpu:8"},
        "gridengine": {"-N llm-sft", "-l h_rt=02:30:00", "-pe pernode 2", "-A gaa50000",
                       "-t 1-3", "-hold_jid 9"},
        "local": {"--name llm-sft", "--walltime 9000", "--array 1-3", "--dependency afterok:9"},
    }
    types = {"abci3": "rt_HF", "abci2": "rt_F", "slurm": "gpu", "gridengine": "node",
             "local": "cpu"}
    for cluster, wanted in expected.items():
        nodes = 1 if cluster == "local" else 2
        dep = "9.pbs1" if cluster == "abci3" else "9"
        spec, profile = parse_spec(dict(BASE, cluster=cluster, resource=types[cluster],
                                        nodes=nodes, group="gaa50000", array="1-3",
                                        depends_on=[dep], modules=[]))
        plan = plan_job(spec, profile)
        assert wanted <= set(plan.directives), (cluster, set(plan.directives))
        body = plan.script.split("set -euo pipefail", 1)[1]
        assert "export HF_HOME='/scratch/hf cache'" in body
        assert "python jobs/train.py --config configs/sft.yaml" in body
    # ABCI 2.0's -g goes on the command line, never into a '#$' line
    spec, profile = parse_spec(CASES["abci2-multinode"])
    plan = plan_job(spec, profile)
    assert plan.submit_argv("x.sh") == ["qsub", "-terse", "-g", "gaa50000", "x.sh"]
    assert not re.search(r"^#\$ .*-g\b", plan.script, re.MULTILINE)


def test_extra_directive_that_clashes_is_refused_and_drop_lets_it_in() -> None:
    # the same 2 chunks, spelled with mpiprocs as the ABCI 3.0 guide's MPI examples do
    job = dict(CASES["abci3-array"], extra_directives=["-l select=2:ncpus=8:mpiprocs=8"])
    plan = plan_job(*parse_spec(job))
    assert [p.where for p in plan.errors] == ["extra_directives.0"]
    assert "drop_directives" in plan.errors[0].message
    plan = plan_job(*parse_spec(dict(job, drop_directives=["-l select"])))
    assert plan.errors == []
    assert plan.directives.count("-l select=2:ncpus=8:mpiprocs=8") == 1
    assert "-l select=2" not in plan.directives
    # a different node count is not a respelling: the limits and the price would miss it
    plan = plan_job(*parse_spec(dict(job, drop_directives=["-l select"],
                                     extra_directives=["-l select=4:ncpus=8"])))
    [problem] = plan.errors
    assert problem.where == "extra_directives.0" and "set the spec's nodes" in problem.message


def test_pbs_refuses_output_placeholders_it_cannot_expand() -> None:
    plan = plan_job(*parse_spec(dict(CASES["abci3-array"], output="out/{job_id}.log")))
    assert [p.where for p in plan.errors] == ["output"]


def test_render_command_prints_script_and_exact_command(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "job.yaml").write_text(yaml.safe_dump(CASES["abci2-multinode"]))
    result = cli("render", "job.yaml")
    assert result.output.startswith("#!/bin/bash\n#$ -N llm-sft\n")
    # never a placeholder: the file it would be saved as, and how to save it
    assert "JOB_SCRIPT" not in result.output
    assert ("# saved as llm-sft.sh (abcitrain render job.yaml -o llm-sft.sh), submit with: "
            "qsub -terse -g gaa50000 llm-sft.sh; or `abcitrain submit job.yaml`") in result.output
    out = cli("render", "job.yaml", "-o", "out.sh")
    assert "# submit with: qsub -terse -g gaa50000 out.sh" in out.output
    assert (tmp_path / "out.sh").read_text().startswith("#!/bin/bash\n#$ -N llm-sft")


def test_templates_ship_inside_the_wheel(tmp_path: Path) -> None:
    """Build the wheel and render from it, away from the checkout's templates/ folder."""
    import zipfile

    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("abcitrain-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "abcitrain/templates/job.sh.j2" in names
    assert "abcitrain/profiles/abci3.yaml" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("from abcitrain.batch.render import plan_job, templates_dir;"
            "from abcitrain.batch.spec import parse_spec;"
            "print(templates_dir());"
            "p = plan_job(*parse_spec({'name': 'w', 'cluster': 'local', 'resource': 'cpu',"
            " 'walltime': 60, 'command': ['true']}));"
            "print(p.script.splitlines()[1])")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True,
                         capture_output=True, env={"PYTHONPATH": str(unpacked),
                                                   "PATH": os.environ["PATH"]})
    assert run.returncode == 0, run.stderr
    assert str(unpacked) in run.stdout and "#LOCAL --name w" in run.stdout


def test_pbs_gets_one_v_list_so_a_reservations_rtype_survives_user_variables() -> None:
    """OpenPBS's qsub keeps only the last -v: RTYPE (mandatory in an ABCI 3.0 reservation)
    and the user's variables end in one list."""
    job = dict(CASES["abci3-array"], reservation="R1234.pbs1")
    for extra in ("-v USE_SSH=1", "-v RTYPE=rt_HF,USE_SSH=1"):
        plan = plan_job(*parse_spec(dict(job, extra_directives=[extra])))
        assert not plan.errors, plan.errors
        assert [d for d in plan.directives if d.startswith("-v")] == ["-v RTYPE=rt_HF,USE_SSH=1"]
        assert plan.script.count("#PBS -v") == 1
    clash = plan_job(*parse_spec(dict(job, extra_directives=["-v RTYPE=rt_HG"])))
    assert [p.where for p in clash.errors] == ["extra_directives.0"]


def test_abci2_multi_node_training_asks_for_ssh_its_launcher_needs(tmp_path: Path) -> None:
    """ABCI 2.0's launcher (pdsh) reaches the other nodes over ssh: -l USE_SSH=1 with the
    port, from the profile's launcher.request; ABCI 3.0's Open MPI under PBS needs none."""
    import yaml

    from abcitrain.service.plans import load_plan

    base = yaml.safe_load((Path(__file__).parents[1] / "jobs" /
                           "sft-llama2-7b-abci3.yaml").read_text())
    for cluster, resource, nodes, wanted in (("abci2", "rt_AF", 2, True),
                                             ("abci2", "rt_AF", 1, False),
                                             ("abci3", "rt_HF", 2, False)):
        path = tmp_path / f"{cluster}-{nodes}.yaml"
        path.write_text(yaml.safe_dump(dict(base, cluster=cluster, resource=resource,
                                            nodes=nodes)))
        plan = load_plan(path)
        has = "-l USE_SSH=1" in plan.directives and "-v SSH_PORT=2222" in plan.directives
        assert has == wanted, (cluster, nodes, plan.directives)
        assert not any("USE_SSH" in d for d in plan.directives) or wanted


def test_mpi_rank_layout_goes_into_each_schedulers_request() -> None:
    """ranks_per_node and threads_per_rank: PBS's select chunk (the ABCI 3.0 guide's
    select=2:mpiprocs=8:ompthreads=12), Slurm's --ntasks-per-node/--cpus-per-task, and
    OMP_NUM_THREADS for every scheduler."""
    layout = {"ranks_per_node": 8, "threads_per_rank": 12, "nodes": 2}
    pbs = plan_job(*parse_spec(dict(CASES["abci3-array"], **layout)))
    assert "-l select=2:mpiprocs=8:ompthreads=12" in pbs.directives and not pbs.errors
    assert "export OMP_NUM_THREADS=12" in pbs.script
    slurm = plan_job(*parse_spec({"name": "m", "cluster": "slurm", "resource": "gpu",
                                  "walltime": "1:00:00", "command": ["true"],
                                  "ranks_per_node": 4, "threads_per_rank": 8}))
    assert {"--ntasks-per-node=4", "--cpus-per-task=8"} <= set(slurm.directives)
    over = plan_job(*parse_spec(dict(CASES["abci3-array"], ranks_per_node=64,
                                     threads_per_rank=4)))
    assert [p.where for p in over.errors] == ["ranks_per_node"]
    assert "256 cores, over the 192 of rt_HF" in over.errors[0].message
