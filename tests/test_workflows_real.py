"""Sweeps, chains and Python functions on REAL Slurm, REAL Son of Grid Engine (tests/infra)
and abcitrain's own local scheduler: the same spec or the same Python code on each.

A sweep must reach the scheduler as ONE array job; a chain's stages must run in order and a
failed stage must stop the rest; a submitted function's value (and exception) must come back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli, wait_for

from abcitrain.batch.store import JobStore
from abcitrain.points.ledger import Ledger

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
RESOURCE = {"slurm-test": "gpu", "sge-test": "rt_F", "local": "cpu"}


@pytest.fixture(params=["slurm-test", "sge-test", "local"])
def cluster(request: pytest.FixtureRequest) -> str:
    if request.param == "slurm-test":
        request.getfixturevalue("slurm_cluster")
    elif request.param == "sge-test":
        request.getfixturevalue("sge_cluster")
    return str(request.param)


def _status(*job_ids: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli("status", *job_ids, "--json").output)
    return rows


def _ended(job_id: str) -> dict[str, Any] | None:
    row = _status(job_id)[0]
    return row if row["state"] in TERMINAL else None


def test_a_20_task_sweep_is_one_array_and_every_task_gets_its_parameters(
        cluster: str, tmp_path: Path) -> None:
    lrs, seeds = ["1e-4", "3e-4", "1e-3", "3e-3"], [1, 2, 3, 4, 5]
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "sweep", "cluster": cluster, "resource": RESOURCE[cluster],
        "walltime": "0:10:00", "max_concurrent": 2,
        "sweep": {"grid": {"LR": lrs, "SEED": seeds}},
        "command": ["bash", "-c", 'mkdir -p out && printf "%s %s %s" "$LR" "$SEED" '
                    '"$ABCITRAIN_SWEEP_PARAMS" > "out/task-$ABCITRAIN_ARRAY_INDEX"']}))
    out = cli("submit", str(spec), "--json").output
    job = json.loads(out[out.index("{"):])["job_id"]
    row: Any = wait_for(lambda: _ended(job), 240, f"{cluster} sweep {job}")
    assert row["state"] == "COMPLETED", row
    # ONE job in the store and ONE charge in the ledger, priced for its 20 tasks
    assert [r.job_id for r in JobStore().recent(limit=100)] == [job]
    assert [(c["ref"], c["tasks"]) for c in Ledger().rows()] == [(job, 20)]
    expected = [(lr, seed) for lr in lrs for seed in seeds]       # grid order: last fastest
    for index, (lr, seed) in enumerate(expected, start=1):
        text = (tmp_path / "out" / f"task-{index}").read_text()
        got_lr, got_seed, params = text.split(" ", 2)
        assert (got_lr, got_seed) == (lr, str(seed)), index
        assert json.loads(params) == {"LR": lr, "SEED": seed}
    assert len(list((tmp_path / "out").iterdir())) == 20
    # status and results per task: each task's state and exit, with its parameters
    tasks = _status(job)[0]["tasks"]
    assert [(t["index"], t["state"], t["exit_code"]) for t in tasks] == \
        [(str(i), "COMPLETED", 0) for i in range(1, 21)]
    assert [t["params"] for t in tasks] == [{"LR": lr, "SEED": seed} for lr, seed in expected]


def test_a_chain_runs_in_order_and_a_failed_stage_stops_the_rest(
        cluster: str, tmp_path: Path) -> None:
    def stage(name: str, fail: bool = False, **more: Any) -> dict[str, Any]:
        script = f"sleep 1; echo {name} >> order.txt" + ("; exit 7" if fail else "")
        return {"name": name, "command": ["bash", "-c", script], **more}

    spec = tmp_path / "chain.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "pipeline", "cluster": cluster, "resource": RESOURCE[cluster],
        "walltime": "0:10:00",
        "stages": [stage("prep"), stage("train", fail=True), stage("evaluate"),
                   stage("report", after="afterany")]}))
    out = cli("submit", str(spec), "--json").output
    ids = [s["job_id"] for s in json.loads(out[out.index("{"):])["stages"]]
    rows: Any = wait_for(lambda: all(r["state"] in TERMINAL for r in _status(*ids))
                         and _status(*ids), 240, f"{cluster} chain {ids}")
    states = {r["name"]: r for r in rows}
    assert states["prep"]["state"] == "COMPLETED"
    assert states["train"]["state"] == "FAILED" and states["train"]["exit_code"] == 7
    # the stage after the failure never ran its command: the scheduler cancelled it (Slurm,
    # local) or its script refused to start it (Grid Engine runs -hold_jid jobs anyway)
    assert states["evaluate"]["state"] in ("CANCELLED", "FAILED"), states["evaluate"]
    # afterany after a stage that never ran: Slurm and the local scheduler cancel it (its
    # dependency can never be met once evaluate was cancelled); Grid Engine runs it
    order = (tmp_path / "order.txt").read_text().split()
    assert order[:2] == ["prep", "train"] and "evaluate" not in order, order
    chain = {r["chain"]["stage"]: r["chain"] for r in rows}
    assert [chain[n]["index"] for n in ("prep", "train", "evaluate", "report")] == [1, 2, 3, 4]


#: The user's code, in a module of the folder the jobs are submitted from (the job runs
#: there and imports it, as a submitit job imports the submitter's modules).
USER_MODULE = """
def add(a, b):
    return a + b

def fail(text):
    raise ValueError(text)
"""


def test_a_python_function_returns_its_value(cluster: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import submitit

    from abcitrain.api.executor import AbcitrainJob

    (tmp_path / "usercode.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    # this test's module, not one another test imported under the same name
    monkeypatch.delitem(sys.modules, "usercode", raising=False)
    user = importlib.import_module("usercode")

    ex = submitit.AutoExecutor(str(tmp_path / "fn"), cluster="abcitrain",
                               abcitrain_cluster=cluster)
    ex.update_parameters(timeout_min=10, abcitrain_resource=RESOURCE[cluster])
    job = ex.submit(user.add, 2, 3)
    assert isinstance(job, AbcitrainJob)
    assert job.result() == 5
    tasks = ex.map_array(user.add, [1, 2, 3], [10, 20, 30])
    assert len({t.job_id.rsplit("_", 1)[0] for t in tasks}) == 1     # one array job
    assert [t.result() for t in tasks] == [11, 22, 33]
    failed = ex.submit(user.fail, "a clear message")
    error = failed.exception()
    assert error is not None and "ValueError: a clear message" in str(error)
    # `abcitrain logs` shows what the function printed and its traceback (they go to
    # submitit's files, not the job's output file, which `logs` alone showed: empty)
    log = cli("logs", failed.job_id).output
    assert "(the function's errors and traceback) <==" in log, log
    assert "ValueError: a clear message" in log
    # every function job is an abcitrain job: recorded (3 submissions: 1, the array, 1)
    assert len(JobStore().recent(limit=100)) == 3


#: A checkpointable function (submitit.helpers.Checkpointable): it counts to ``target``, one
#: step a second, and writes its pid once so that the test can send the preemption signal.
COUNTER_MODULE = """
import os, time
from pathlib import Path
import submitit

class Counter(submitit.helpers.Checkpointable):
    def __init__(self):
        self.count = 0
        self.starts = 0

    def __call__(self, target, folder):
        self.starts += 1
        Path(folder, f"pid-{self.starts}").write_text(str(os.getpid()))
        while self.count < target:
            time.sleep(1)
            self.count += 1
        return (self.count, self.starts)
"""


@pytest.mark.parametrize("real", ["slurm-test", "sge-test"])
def test_a_preempted_checkpointable_function_is_requeued_and_resumes(
        real: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit's protocol: on the preemption signal (the runner sends it before the
    walltime; here the test sends it at once) the function is checkpointed, the job is
    requeued under the same id by the scheduler's own command, and the second run resumes
    from the checkpoint."""
    import importlib
    import os
    import signal

    import submitit

    request.getfixturevalue("slurm_cluster" if real == "slurm-test" else "sge_cluster")
    (tmp_path / "countermod.py").write_text(COUNTER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "countermod", raising=False)
    counter = importlib.import_module("countermod").Counter()
    ex = submitit.AutoExecutor(str(tmp_path / "fn"), cluster="abcitrain",
                               abcitrain_cluster=real)
    ex.update_parameters(timeout_min=10, abcitrain_resource=RESOURCE[real])
    job = ex.submit(counter, 6, str(tmp_path))
    first = tmp_path / "pid-1"
    wait_for(first.exists, 120, "the function to start")
    os.kill(int(first.read_text()), signal.SIGUSR2)
    count, starts = job.result()
    assert (count, starts) == (6, 2)
    log = job.stderr() or ""
    assert "this job is preempted" in log or "this job is timed-out" in log, log[-2000:]
    # the scheduler saw ONE job: the requeue kept its id
    assert len(JobStore().recent(limit=10)) == 1
