"""Sweeps, chains, the Python API and the function executor without a scheduler: what each
renders, refuses and prices. (tests/test_workflows_real.py runs them on real schedulers.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cli
from test_points import PRICED

from abcitrain.batch.render import plan_job
from abcitrain.batch.spec import parse_spec
from abcitrain.batch.store import JobStore
from abcitrain.batch.sweep import sweep_tasks
from abcitrain.errors import InputError
from abcitrain.points.ledger import Ledger

RESOURCE = {"slurm": "cpu", "gridengine": "node", "pbs": "node", "abci3": "rt_HG",
            "abci2": "rt_F", "local": "cpu"}


def _spec(cluster: str = "slurm", **more: Any) -> dict[str, Any]:
    return {"name": "sw", "cluster": cluster, "resource": RESOURCE[cluster], "walltime": 600,
            "group": "gaa50000", "command": ["echo", "${LR}"], **more}


def _plan(data: dict[str, Any]) -> Any:
    return plan_job(*parse_spec(data))


# --- sweeps -----------------------------------------------------------------------------

def test_a_grid_is_every_combination_with_the_last_key_fastest() -> None:
    tasks, problems = sweep_tasks({"grid": {"LR": [0.1, 0.2], "SEED": [1, 2, 3]}})
    assert problems == []
    assert tasks == [{"LR": 0.1, "SEED": 1}, {"LR": 0.1, "SEED": 2}, {"LR": 0.1, "SEED": 3},
                     {"LR": 0.2, "SEED": 1}, {"LR": 0.2, "SEED": 2}, {"LR": 0.2, "SEED": 3}]
    listed, problems = sweep_tasks({"list": [{"LR": 1}, {"LR": 2, "SEED": 5}]})
    assert problems == [] and listed == [{"LR": 1}, {"LR": 2, "SEED": 5}]


def test_every_problem_of_a_sweep_is_listed_at_once() -> None:
    with pytest.raises(InputError) as err:
        parse_spec(_spec(array="1-3", sweep={"grid": {"LR": [1, 1], "bad-name": [1],
                                                      "ABCITRAIN_X": [1], "EMPTY": [],
                                                      "FLAG": [True]}, "extra": 1}))
    where = sorted(p.where for p in err.value.problems)
    assert where == ["array", "sweep.extra", "sweep.grid.ABCITRAIN_X", "sweep.grid.EMPTY",
                     "sweep.grid.FLAG.0", "sweep.grid.LR", "sweep.grid.bad-name"]
    with pytest.raises(InputError) as err:
        parse_spec(_spec(max_concurrent=2))
    assert [p.where for p in err.value.problems] == ["max_concurrent"]


@pytest.mark.parametrize(("cluster", "expected"), [
    ("slurm", ["--array=1-6%2"]), ("gridengine", ["-t 1-6", "-tc 2"]),
    ("pbs", ["-J 1-6:1", "-W max_run_subjobs=2"]), ("abci3", ["-J 1-6:1",
                                                          "-W max_run_subjobs=2"]),
    ("abci2", ["-t 1-6", "-tc 2"]), ("local", ["--array 1-6"])])
def test_a_sweep_is_one_array_with_its_concurrency_limit(cluster: str,
                                                         expected: list[str]) -> None:
    # Slurm: --array=1-6%2 (sbatch(1)); Grid Engine: -tc (qsub(1)); PBS: the job attribute
    # max_run_subjobs (OpenPBS ATTR_max_run_subjobs, set with -W); the local scheduler runs
    # an array's tasks one at a time anyway
    plan = _plan(_spec(cluster, max_concurrent=2,
                       sweep={"grid": {"LR": [1, 2, 3], "SEED": [7, 8]}}))
    assert plan.errors == []
    arrayish = [d for d in plan.directives if d.startswith(("--array", "-t", "-J", "-W max"))]
    assert arrayish == expected


def _run_task(script: str, index: int, tmp_path: Path) -> str:
    path = tmp_path / "job.sh"
    # the script up to its command, then print what the task was given
    body = script.split("\necho ")[0] + '\nprintf "%s|%s|%s" "$LR" "$SEED" ' \
        '"$ABCITRAIN_SWEEP_PARAMS"\n'
    path.write_text(body)
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": str(index),
           "ABCITRAIN_SUBMIT_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(path)], capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_float_sweep_value_reaches_its_task_as_the_user_typed_it(tmp_path: Path) -> None:
    """`LR: [1.0e-4, 2.50]` in YAML used to reach the task as 0.0001 and 2.5."""
    from abcitrain.util.yamlio import load_yaml_text

    sweep = load_yaml_text("grid:\n  LR: [1.0e-4, 3.0E-4, 2.50]\n  SEED: [1]\n", "spec")
    plan = _plan(_spec(sweep=sweep))
    assert [_run_task(plan.script, i, tmp_path).split("|")[0] for i in (1, 2, 3)] == [
        "1.0e-4", "3.0E-4", "2.50"]
    # the same numbers to a program that parses them
    params = json.loads(_run_task(plan.script, 1, tmp_path).split("|")[2])
    assert params == {"LR": 0.0001, "SEED": 1}


def test_each_task_runs_with_its_own_parameters_exactly_as_written(tmp_path: Path) -> None:
    plan = _plan(_spec(sweep={"list": [{"LR": "1e-4", "SEED": 1},
                                       {"LR": "$(touch PWNED) it's", "SEED": 2.5}]}))
    assert _run_task(plan.script, 1, tmp_path) == '1e-4|1|{"LR": "1e-4", "SEED": 1}'
    lr, seed, params = _run_task(plan.script, 2, tmp_path).split("|")
    assert (lr, seed) == ("$(touch PWNED) it's", "2.5")
    assert json.loads(params) == {"LR": "$(touch PWNED) it's", "SEED": 2.5}
    assert not list(tmp_path.rglob("PWNED"))
    # an index outside the sweep stops the task with a message (exit 2)
    path = tmp_path / "job.sh"
    proc = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "3",
                               "ABCITRAIN_SUBMIT_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "is not one of this sweep's 2 tasks" in proc.stderr


def test_a_sweep_over_the_array_cap_is_refused() -> None:
    # tests/data/clusters/slurm-test.yaml extends slurm: array_max_tasks 1000
    data = {**_spec(), "cluster": "slurm-test", "resource": "gpu",
            "sweep": {"grid": {"A": list(range(11)), "B": list(range(100))}}}
    plan = _plan(data)
    assert [(p.where, p.message) for p in plan.errors] == [
        ("array", "1100 tasks is over the cap of 1000 per array job")]


def test_a_sweep_is_priced_for_all_its_tasks(tmp_path: Path) -> None:
    one = {**_spec(), "cluster": "slurm-test", "resource": "gpu", "walltime": "1:00:00"}
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(one))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {**one, "sweep": {"grid": {"LR": [1, 2, 3, 4]}}}))
    single = cli("submit", "--dry-run", "one.yaml").output
    swept = cli("submit", "--dry-run", "sweep.yaml").output
    # slurm-test: 1.2 points per node-hour (tests/data/clusters): 1 task 1.2, 4 tasks 4.8
    assert "1.2000 points" in single and "4.8000 points" in swept
    assert "x 4 array tasks" in swept
    assert not Path(os.environ["ABCITRAIN_DATA_DIR"], "ledger.db").exists()


# --- chains -----------------------------------------------------------------------------

def _chain(tmp_path: Path, **top: Any) -> Path:
    data = {"name": "pipe", "cluster": "slurm", "resource": "cpu", "walltime": 600,
            "stages": [{"name": "prep", "command": ["true"]},
                       {"name": "train", "command": ["true"], "walltime": 1200},
                       {"name": "eval", "after": "afterany", "command": ["true"]}], **top}
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_stage_problem_is_listed_before_anything_is_submitted(tmp_path: Path) -> None:
    path = _chain(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["stages"][0]["after"] = "afterok"
    data["stages"][1]["resource"] = "nope"
    data["stages"][2]["after"] = "sometimes"
    data["stages"].append({"name": "prep", "command": ["true"]})
    path.write_text(yaml.safe_dump(data))
    out = cli("submit", str(path), ok=None)
    assert out.exit_code == 2
    for text in ("stages.0.after: the first stage waits for no stage",
                 "stages.1.resource: 'nope' is not a resource type",
                 "stages.2.after: 'sometimes': one of afterok, afterany",
                 "stages.3.name: 'prep' names two stages"):
        assert text in out.output, out.output
    assert "submitted" not in out.output


def test_a_dry_run_shows_every_stage_waiting_for_the_one_before(tmp_path: Path) -> None:
    out = cli("submit", "--dry-run", str(_chain(tmp_path))).output
    assert out.count("#SBATCH --dependency=") == 2
    assert "#SBATCH --dependency=afterok:{prep}" in out
    assert "#SBATCH --kill-on-invalid-dep=yes" in out      # afterok: a failure cancels
    assert "#SBATCH --dependency=afterany:{train}" in out
    assert "stage 3 of 3: eval" in out and "nothing was written" in out
    assert not (tmp_path / ".abcitrain").exists()


def test_grid_engine_stages_check_afterok_themselves(tmp_path: Path) -> None:
    out = cli("render", str(_chain(tmp_path, cluster="gridengine", resource="node"))).output
    train = out.split("# ===== stage 2")[1].split("# ===== stage 3")[0]
    assert "#$ -hold_jid {prep}" in train
    assert 'if [ ! -e "$ABCITRAIN_SUBMIT_DIR"/.abcitrain/chains/pipe-' in train
    # no "-hold_jid is afterany" warning: the stage's own check makes it afterok
    assert "whatever their exit status" not in out
    evaluate = out.split("# ===== stage 3")[1]
    assert "if [ ! -e" not in evaluate             # afterany runs whatever came before


def test_a_chain_over_budget_is_refused_whole_before_its_first_stage(tmp_path: Path) -> None:
    clusters = tmp_path / ".abcitrain" / "clusters"
    clusters.mkdir(parents=True)
    (clusters / "priced.yaml").write_text(PRICED)
    (tmp_path / "abcitrain.yaml").write_text(yaml.safe_dump({"budgets": {"team1": 25}}))
    # 3 stages x 1 hour x 10 points/hour = 30 > 25: each stage alone (10) would fit
    path = _chain(tmp_path, cluster="priced", resource="cpu", walltime="1:00:00",
                  group="team1")
    data = yaml.safe_load(path.read_text())
    for stage in data["stages"]:
        stage.pop("walltime", None)
    path.write_text(yaml.safe_dump(data))
    out = cli("submit", str(path), ok=None)
    assert out.exit_code == 2, out.output
    assert "would cost up to 30.0000 points, but group team1 has 25" in out.output
    assert Ledger().rows() == []                       # nothing charged, nothing submitted
    assert JobStore().recent() == []


# --- the function executor ----------------------------------------------------------------

def test_submitit_finds_the_abcitrain_executor_and_job_environment() -> None:
    from submitit.core import plugins

    from abcitrain.api.executor import AbcitrainExecutor, AbcitrainJobEnvironment

    assert plugins.get_executors()["abcitrain"] is AbcitrainExecutor
    assert isinstance(plugins.get_job_environments()["abcitrain"], AbcitrainJobEnvironment)


def test_generic_parameters_choose_a_resource_type_that_fits(tmp_path: Path) -> None:
    from abcitrain.api.executor import AbcitrainExecutor

    ex = AbcitrainExecutor(tmp_path, cluster="abci3")
    ex.update_parameters(gpus_per_node=2, timeout_min=90, group="gaa50000")
    spec = ex._spec(1)
    # abci3's types in profile order: rt_HF (8 GPUs) is the first with 2 or more
    assert spec["resource"] == "rt_HF" and spec["walltime"] == 5400
    ex.update_parameters(resource="rt_HG")
    assert ex._spec(3)["resource"] == "rt_HG" and ex._spec(3)["array"] == "1-3"
    with pytest.raises(InputError):
        ex.update_parameters(not_a_parameter=1)
    ex.update_parameters(nodes=2)
    with pytest.raises(InputError, match="one process per job"):
        ex._spec(1)


@pytest.mark.parametrize(("scheduler", "env", "argv", "status"), [
    ("slurm", {"SLURM_JOB_ID": "42"}, ("scontrol", "requeue", "42"), None),
    # Grid Engine: exit status 99 reschedules the job, or the task of an array (sge_conf(5))
    ("uge", {"JOB_ID": "7", "SGE_TASK_ID": "undefined"}, (), 99),
    ("uge", {"JOB_ID": "7", "SGE_TASK_ID": "3"}, (), 99),
    ("pbs", {"PBS_JOBID": "12[3].pbs1"}, ("qrerun", "12[3].pbs1"), None),
])
def test_requeue_uses_the_schedulers_own_means(scheduler: str, env: dict[str, str],
                                              argv: tuple[str, ...], status: int | None) -> None:
    from abcitrain.api.executor import requeue_for

    way = requeue_for(env)
    assert (way.argv, way.exit_status) == (argv, status)
    # qrerun(1B): "PBS Manager or Operator privilege is required" -- said when refused
    assert ("Operator privilege" in way.needs) == (scheduler == "pbs")
    with pytest.raises(InputError, match="cannot requeue") as local:
        requeue_for({"LOCAL_JOB_ID": "3"})
    assert "the local scheduler cannot requeue" in str(local.value.problems[0])
    with pytest.raises(InputError, match="cannot requeue") as outside:
        requeue_for({})
    assert "no known scheduler's job" in str(outside.value.problems[0])


#: Hand-made: qrerun's error line as OpenPBS's prt_job_err prints it ("qrerun: <text> <job
#: id>") with PBSE_PERM's text, and a non-zero status (qrerun(1B): "Greater than zero upon
#: failure").
HANDMADE_QRERUN_REFUSED = '#!/bin/sh\necho "qrerun: Unauthorized Request  $1" >&2\nexit 1\n'


def test_a_refused_pbs_requeue_reaches_the_user_in_pbs_words_and_plain_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in qrerun answers as OpenPBS does to a user without Operator privilege
    (HANDMADE_QRERUN_REFUSED: no capture holds it, PBS cannot run here)."""
    from abcitrain.api.executor import AbcitrainJobEnvironment

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qrerun = bin_dir / "qrerun"
    qrerun.write_text(HANDMADE_QRERUN_REFUSED)
    qrerun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for name in ("SLURM_JOB_ID", "JOB_ID", "SGE_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PBS_JOBID", "12.pbs1")
    with pytest.raises(RuntimeError) as refused:
        AbcitrainJobEnvironment()._requeue(0)
    said = str(refused.value)
    assert "qrerun: Unauthorized Request  12.pbs1" in said          # the scheduler's words
    assert "Operator privilege" in said and "submit it again" in said   # and plain ones


def test_the_job_knows_its_scheduler_from_the_schedulers_own_variables() -> None:
    """A Grid Engine job gets none of the submitter's environment (no profile search path):
    the requeue goes by what each scheduler sets in every job."""
    from abcitrain.backends import backend_running

    def running(env: dict[str, str]) -> str | None:
        backend = backend_running(env)
        return backend.name if backend is not None else None

    assert running({"PBS_JOBID": "12[3].pbs1"}) == "pbs"
    assert running({"SLURM_JOB_ID": "42"}) == "slurm"
    assert running({"JOB_ID": "7", "SGE_TASK_ID": "undefined"}) == "uge"
    assert running({"LOCAL_JOB_ID": "3"}) == "local"
    # a local-scheduler job started inside a PBS job is the local scheduler's
    assert running({"LOCAL_JOB_ID": "3", "PBS_JOBID": "12.pbs1"}) == "local"
    assert running({"JOB_ID": "7"}) is None and running({}) is None


def test_the_preemption_signal_comes_before_the_walltime() -> None:
    from abcitrain.api.runner import MAX_MARGIN_S, margin_s

    assert margin_s(60) == 6 and margin_s(30) == 5 and margin_s(86400) == MAX_MARGIN_S


# --- the Python API -----------------------------------------------------------------------

def test_the_api_plans_checks_and_dry_runs_like_the_cli(tmp_path: Path) -> None:
    from abcitrain.api import submission as jobs

    data = _spec("abci3", walltime="1:00:00")
    (tmp_path / "j.yaml").write_text(yaml.safe_dump(data))
    assert jobs.plan(data).script == jobs.plan(tmp_path / "j.yaml").script
    assert "#PBS -l walltime=02:00:00" in jobs.plan(data, {"walltime": "2:00:00"}).script
    with pytest.raises(InputError) as err:
        jobs.plan(data, {"walltime": "999:00:00", "resource": "rt_HG", "nodes": 99})
    assert {p.where for p in err.value.problems} == {"walltime", "nodes"}
    dry = jobs.submit(data, dry_run=True)
    assert not isinstance(dry, jobs.Job) and dry.job_id is None
    assert dry.argv[0] == "qsub"


def _training(tmp_path: Path, **more: Any) -> dict[str, Any]:
    if not (tmp_path / "jobs").exists():
        (tmp_path / "jobs").symlink_to(Path(__file__).resolve().parent.parent / "jobs")
    return {"name": "lrs", "cluster": "local", "resource": "cpu", "walltime": "0:20:00",
            "train": {"mode": "sft", "model": "jobs/models/tiny-llama", "init": "random",
                      "data": "jobs/data/sft.jsonl", "seq_len": 48, "global_batch": 8,
                      "steps": 2, "precision": "fp32", "ranks_per_node": 2}, **more}


def test_a_training_sweep_runs_each_task_in_its_own_folder(tmp_path: Path) -> None:
    from abcitrain.api import submission as jobs

    plan = jobs.plan(_training(tmp_path, sweep={"grid": {"train.lr": [0.002, 0.001]}}))
    command = plan.script.rstrip().splitlines()[-1]
    # the job's shell puts each task in its own folder (the index expands at run time)
    assert '--state runs/lrs/task-"${ABCITRAIN_ARRAY_INDEX}"/state.json' in command
    assert 'runs/lrs/task-"${ABCITRAIN_ARRAY_INDEX}"/train.json' in command
    assert "#LOCAL --array 1-2" in plan.script


def test_every_bad_training_sweep_task_is_named(tmp_path: Path) -> None:
    from abcitrain.api import submission as jobs

    data = _training(tmp_path, sweep={"list": [{"train.lr": 0.1}, {"train.lr": -1},
                                               {"train.steps": "many"}]})
    with pytest.raises(InputError) as err:
        jobs.plan(data)
    assert [p.where for p in err.value.problems] == ["sweep task 2: train.lr",
                                                     "sweep task 3: train.steps"]
    data = _training(tmp_path, sweep={"grid": {"train.lr": [0.1, 0.2]}})
    data["train"]["walltime"] = {"max_jobs": 2}
    with pytest.raises(InputError, match="a sweep cannot continue itself"):
        jobs.plan(data)


USER_MODULE = "def add(a, b):\n    return a + b\n"


def test_functions_on_pbs_run_as_pbs_would_run_them(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PBS Pro cannot be installed here. `qsub` and `qstat` are stand-ins that answer with a
    live OpenPBS server's captured output (tests/data/samples/openpbs: array 6[].vm, its
    three subjobs finished); each task's script is then run by bash with the variables a
    PBS mom sets (PBS_JOBID 6[I].vm, PBS_ARRAY_INDEX, PBS_O_WORKDIR)."""
    import importlib

    from conftest import DATA

    from abcitrain.api.executor import AbcitrainExecutor

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    captured = DATA / "samples" / "openpbs" / "c-t.json"
    (bin_dir / "qsub").write_text(f'#!/bin/bash\necho "qsub $*" >> {calls}\necho "6[].vm"\n')
    (bin_dir / "qstat").write_text(f'#!/bin/bash\necho "qstat $*" >> {calls}\n'
                                   f'cat {captured}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (tmp_path / "usercode.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "usercode", raising=False)
    user = importlib.import_module("usercode")

    ex = AbcitrainExecutor(tmp_path / "fn", cluster="pbs")
    ex.update_parameters(resource="node", timeout_min=5, max_concurrent=2)
    tasks = ex.map_array(user.add, [1, 2, 3], [10, 20, 30])
    assert [t.job_id for t in tasks] == ["6[].vm_1", "6[].vm_2", "6[].vm_3"]
    [record] = JobStore().recent()
    script = Path(record.script_path).read_text()
    for directive in ("#PBS -J 1-3:1", "#PBS -W max_run_subjobs=2", "#PBS -r y"):
        assert directive in script
    for index in (1, 2, 3):
        env = {**os.environ, "PBS_JOBID": f"6[{index}].vm", "PBS_ARRAY_INDEX": str(index),
               "PBS_O_WORKDIR": str(tmp_path), "PBS_JOBNAME": "submitit"}
        proc = subprocess.run(["bash", record.script_path], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert [t.result() for t in tasks] == [11, 22, 33]
    # the state came from ONE qstat for the whole array (the captured answer: finished)
    assert all(t.state == "COMPLETED" for t in tasks)
    qstats = [line for line in calls.read_text().splitlines() if line.startswith("qstat")]
    assert qstats == ["qstat -x -t -f -F json 6[].vm"]


def test_a_function_task_is_followed_by_its_own_state_where_the_scheduler_named_it() -> None:
    """A task that failed without a result is over even while its array runs on."""
    import time as clock

    from abcitrain.api.executor import _task_state
    from abcitrain.batch.store import JobRecord

    rec = JobRecord("slurm-test", "41", "slurm", "fn", clock.time(), ".", "x.sh", "x", "1-3",
                    "RUNNING", None, None, "", False, {},
                    tasks=(("1", "COMPLETED", 0), ("2", "FAILED", 1), ("[3]", "PENDING", None)))
    assert [_task_state(rec, j) for j in ("41_1", "41_2", "41_3", "41")] == \
        ["COMPLETED", "FAILED", "RUNNING", "RUNNING"]


def test_a_function_jobs_state_follows_its_result_not_the_watchers_minute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """job.state stayed "RUNNING" for up to a minute after result() returned: the watcher
    answers from its cache until its delay passes. With the result there, it asks again."""
    import time

    from abcitrain.api.executor import AbcitrainJob
    from abcitrain.batch.store import JobRecord, JobStore

    monkeypatch.chdir(tmp_path)
    JobStore().add(JobRecord(
        cluster="local", job_id="41", scheduler="local", name="fn", submitted_at=time.time(),
        submit_dir=str(tmp_path), script_path="x.sh", output="fn.o41", array_tasks=None,
        state="COMPLETED", exit_code=0, elapsed_s=1, detail="", cancel_requested=False,
        spec={}))
    job = AbcitrainJob(tmp_path / "fn", "41", cluster="local")
    watcher = job.watcher
    watcher.register_job("41")
    watcher._info_dict["41"] = {"State": "RUNNING"}       # what it saw while waiting
    watcher._last_status_check = time.time() - 0.5     # half a second ago
    job.paths.result_pickle.parent.mkdir(parents=True, exist_ok=True)
    job.paths.result_pickle.write_bytes(b"done")            # result() has returned
    try:
        assert job.state == "COMPLETED"
    finally:                  # the watcher is shared by every job of this process
        for table in (watcher._registered, watcher._finished):
            table.discard("41")
        watcher._info_dict.pop("41", None)
        watcher.clusters.pop("41", None)


def test_a_chain_is_quoted_stage_by_stage_and_in_all(tmp_path: Path) -> None:
    """`points quote` refused a chain (it is no single job): every stage priced, and the sum;
    on abci3, 7.5 points per rt_HF node-hour: 10 + 20 + 10 minutes = 5 points, and each
    stage may overrun by 2 minutes (0.25 points)."""
    import json

    path = _chain(tmp_path, cluster="abci3", resource="rt_HF", group="gaa50000")
    text = cli("points", "quote", str(path)).output
    assert "chain pipe" in text and ": 5.0000 points at the full walltime of every stage" \
        in text and "up to 5.7500 with the walltime overrun" in text, text
    assert "stage train on abci3: 2.5000 points (1 x rt_HF)" in text
    data = json.loads(cli("points", "quote", str(path), "--json").stdout)
    assert (data["charge_at_walltime"], data["charge_with_overrun"]) == ("5.0000", "5.7500")
    assert [s["charge_at_walltime"] for s in data["stages"]] == ["1.2500", "2.5000", "1.2500"]
