"""Extra directives cannot set what abcitrain checks and prices, in any spelling.

The table is every option of qsub (PBS Professional's qsub(1B), Grid Engine's qsub(1)), of
sbatch(1) and of the local scheduler that sets one of the fields abcitrain writes from the
spec, in the spellings those commands accept: separate and attached values, long and short
names, resource lists, and abbreviated long options where getopt_long/argparse allow them.
"""

from __future__ import annotations

from typing import Any

import pytest

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec

JOBS: dict[str, dict[str, Any]] = {
    "abci3": {"resource": "rt_HF", "group": "gaa50000"},
    "pbs": {"resource": "node"},
    "abci2": {"resource": "rt_F", "group": "gaa50000"},
    "gridengine": {"resource": "node"},
    "slurm": {"resource": "gpu"},
    "local": {"resource": "cpu"},
}
PBS = [
    ("-lwalltime=999:00:00", "walltime"), ("-l walltime=999:00:00", "walltime"),
    ("-l mem=8gb,walltime=999:00:00", "walltime"), ("-l select=99", "nodes"),
    ("-lselect=99:ncpus=8", "nodes"), ("-l nodes=99", "nodes"),
    ("-l ncpus=999", "resource"), ("-J 1-99999", "array"), ("-J1-99999", "array"),
    ("-W depend=afterok:1", "dependency"), ("-Wdepend=afterany:1", "dependency"),
    ("-q other", "resource"), ("-qother", "resource"), ("-P other", "group"),
    ("-A other", "group"), ("-o x.log", "output"), ("-e x.err", "output"),
    ("-j eo", "output"), ("-N other", "name"), ("-Nother", "name"),
]
GRID_ENGINE = [
    ("-l h_rt=999:00:00", "walltime"), ("-l s_rt=999:00:00", "walltime"),
    ("-l h_vmem=4G,h_rt=999:00:00", "walltime"), ("-t 1-99999", "array"), ("-tc 99", "array"),
    ("-ar 123", "reservation"), ("-hold_jid 7", "dependency"),
    ("-hold_jid_ad 7", "dependency"), ("-pe pernode 64", "nodes"), ("-q all.q", "resource"),
    ("-A other", "group"), ("-P other", "group"), ("-g other", "group"),
    ("-o x.log", "output"), ("-e x.err", "output"), ("-N other", "name"),
    ("-wd /tmp", "workdir"),
]
SLURM = [
    ("-t 9999:00:00", "walltime"), ("-t9999", "walltime"), ("--time=9999", "walltime"),
    ("--time 9999", "walltime"), ("--ti=9999", "walltime"), ("-N 999", "nodes"),
    ("-N999", "nodes"), ("--nodes=999", "nodes"), ("--nod=999", "nodes"),
    ("-p cpu", "resource"), ("-pcpu", "resource"), ("--partition=cpu", "resource"),
    ("--gres=gpu:1", "resource"), ("-G 64", "resource"), ("--gpus=64", "resource"),
    ("--gpus-per-node=8", "resource"), ("-a 1-99999", "array"), ("--array=1-99999", "array"),
    ("-d afterok:1", "dependency"), ("--dependency=afterok:1", "dependency"),
    ("--reservation=r1", "reservation"), ("-A other", "group"), ("--account=other", "group"),
    ("-o x.log", "output"), ("--output=x.log", "output"), ("--error=x.err", "output"),
    ("-J other", "name"), ("--job-name=other", "name"), ("-D /tmp", "workdir"),
    ("--chdir=/tmp", "workdir"),
]
LOCAL = [("--nodes 5", "nodes"), ("--nodes=5", "nodes"), ("--no 5", "nodes"),
         ("--walltime 99999", "walltime"), ("--array 1-9", "array"), ("--gpus 8", "resource"),
         ("--name other", "name"), ("--output x", "output"), ("--dependency 1", "dependency")]
CASES = ([("abci3", d, f) for d, f in PBS] + [("pbs", d, f) for d, f in PBS]
         + [("abci2", d, f) for d, f in GRID_ENGINE]
         + [("abci2", "-l rt_AF=64", "resource"), ("abci2", "-l rt_F=64", "resource")]
         + [("gridengine", d, f) for d, f in GRID_ENGINE]
         + [("slurm", d, f) for d, f in SLURM] + [("local", d, f) for d, f in LOCAL])


def _plan(cluster: str, extra: str) -> Any:
    return plan_job(*parse_spec({"name": "t", "cluster": cluster, "walltime": "1:00:00",
                                 "command": ["true"], "extra_directives": [extra],
                                 **JOBS[cluster]}))


@pytest.mark.parametrize(("cluster", "extra", "owned"), CASES)
def test_an_extra_that_sets_an_owned_field_is_refused_naming_it(cluster: str, extra: str,
                                                                owned: str) -> None:
    plan = _plan(cluster, extra)
    assert [p.where for p in plan.errors] == ["extra_directives.0"], plan.errors
    message = plan.errors[0].message
    assert f"sets {owned} (" in message and "set the spec's" in message
    assert extra not in plan.directives


@pytest.mark.parametrize(("cluster", "extra"), [
    ("abci3", "-m abe"), ("abci3", "-k oe"), ("abci3", "-l mem=100gb"),
    ("abci3", "-W sandbox=PRIVATE"), ("abci3", "-l place=scatter"), ("pbs", "-r n"),
    ("abci2", "-l USE_SSH=1"),
    ("abci2", "-m ea"), ("gridengine", "-l h_vmem=4G"), ("gridengine", "-js 10"),
    ("gridengine", "-now n"), ("slurm", "--mail-type=END"),
    ("slurm", "--mail-user=a@b.c"), ("slurm", "-c 4"), ("slurm", "--qos=normal"),
    ("local", "--grace 20")])
def test_other_options_still_pass(cluster: str, extra: str) -> None:
    plan = _plan(cluster, extra)
    assert plan.errors == [] and extra in plan.directives
