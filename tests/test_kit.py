"""The starter kit for real: DeepSpeed on CPU, 2 ranks over gloo, a tiny Llama built from its
config, through the local cluster, real Slurm and real Grid Engine.

- every ZeRO stage trains to the end, exports a model that transformers loads back, and
  logs to MLflow (a SQLite store in the run folder);
- a job whose walltime is shorter than the training is stopped before its end, submits its
  successor, which resumes from the checkpoint; the run ends at exactly the requested steps,
  each step trained once, and its losses equal those of an uninterrupted run: nothing lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, cli, wait_for

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
WALL_STOP_BEFORE_S = 30        # time a stopping job has to checkpoint and submit its successor
PLACES = {"local": "cpu", "slurm-test": "gpu", "sge-test": "rt_F", "pbs-test": "rt_HF"}
# every test here trains with torch and DeepSpeed: marked `kit` (conftest)
pytestmark = pytest.mark.usefixtures("kit")


EXPORT_PROBE = """
import sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM
run, stage = Path(sys.argv[1]), int(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(run / "model", torch_dtype=torch.float32)
names = {n for n, _ in model.named_parameters()}
exported = {k: v for k, v in model.state_dict().items() if k in names}
ckpt = run / "checkpoints"
tag = (ckpt / "latest").read_text().strip()
if stage == 0:      # no partitions: the module's own weights are in the model states file
    trained = torch.load(ckpt / tag / "mp_rank_00_model_states.pt", map_location="cpu",
                         weights_only=False)["module"]
else:
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    trained = get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag=tag)
common = [k for k in exported if k in trained]
worst = max(float((exported[k] - trained[k].float()).abs().max()) for k in common)
# the weights the kit started from: its own seed and model builder (stages 0-2 build the
# same tensors; ZeRO-3 builds under zero.Init, whose draws may differ)
from abcitrain.train.trainer import build_model, load_run
cfg, _, _ = load_run(run / "train.json")
torch.manual_seed(cfg.seed)
_, start = build_model(cfg, torch.float32)
init = dict(start.named_parameters())
moved = sum(not torch.equal(exported[k], init[k].detach()) for k in exported)
print(tag, len(common), len(exported), moved, worst)
"""


def _kit_spec(folder: Path, name: str, cluster: str = "local", **train: Any) -> Path:
    if not (folder / "jobs").exists():
        (folder / "jobs").symlink_to(ROOT / "jobs")
    data = {"name": name, "cluster": cluster, "resource": PLACES[cluster],
            **({"group": "gaa50000"} if cluster == "pbs-test" else {}),
            "walltime": train.pop("walltime_text", "0:20:00"), "nodes": "auto",
            "train": {"mode": "sft", "model": "jobs/models/tiny-llama", "init": "random",
                      "data": "jobs/data/sft.jsonl", "seq_len": 48, "global_batch": 8,
                      "steps": 6, "lr": 0.002, "warmup_steps": 2, "precision": "fp32",
                      "ranks_per_node": 2, **train}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rows(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    steps = [r["step"] for r in train]
    assert len(steps) == len(set(steps)), f"a step was trained twice: {steps}"
    return train


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _rows(run)}


def _mean(values: dict[int, float], steps: range) -> float:
    return sum(values[s] for s in steps) / len(steps)


def _jobs_of(run: Path) -> list[str]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # numeric ids in submission order (PBS's carry the server's name: 2112.pbshost)
    return sorted({r["job_id"] for r in rows}, key=lambda job: int(job.split(".")[0]))


def test_a_training_sweep_gives_each_task_its_run_folder_and_mlflow_run(
        tmp_path: Path, local_jobs: list[str]) -> None:
    """A sweep over train.lr is ONE array job; each task trains with its own learning rate
    in runs/NAME/task-I and logs to one MLflow experiment as a run named by its
    parameters."""
    spec = _kit_spec(tmp_path, "lrs", steps=2, warmup_steps=0)
    data = yaml.safe_load(spec.read_text())
    data["sweep"] = {"grid": {"train.lr": [0.002, 0.0005]}}
    spec.write_text(yaml.safe_dump(data))
    result = cli("submit", "--wait", str(spec), ok=None)
    assert result.exit_code == 0, result.output
    base = tmp_path / "runs" / "lrs"
    for index, lr in ((1, 0.002), (2, 0.0005)):
        run = base / f"task-{index}"
        assert json.loads((run / "train.json").read_text())["train"]["lr"] == lr
        assert json.loads((run / "state.json").read_text())["status"] == "done"
        assert sorted(_losses(run)) == [1, 2]
    with sqlite3.connect(base / "mlflow.db") as db:
        experiments = db.execute("select name from experiments").fetchall()
        runs = db.execute("select r.name, p.value from runs r join params p on "
                          "p.run_uuid = r.run_uuid and p.key = 'lr' order by r.name").fetchall()
    assert ("lrs",) in experiments
    assert runs == [("task-1 train.lr=0.002", "0.002"), ("task-2 train.lr=0.0005", "0.0005")]


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_every_zero_stage_trains_on_the_local_cluster(tmp_path: Path, stage: int,
                                                      local_jobs: list[str]) -> None:
    mlflow = ({"register_as": f"tiny-z{stage}"} if stage == 3 else
              {"tracking_uri": f"sqlite:///{tmp_path}/team.db", "experiment": "team"}
              if stage == 1 else {})
    spec = _kit_spec(tmp_path, f"z{stage}", zero=stage, eval_every=3, mlflow=mlflow)
    result = cli("submit", "--wait", str(spec), ok=None)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / f"z{stage}"
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["step"]) == ("done", 6)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # evaluated at steps 3 and 6 (eval_every), the last one not again as the final one
    assert [r["step"] for r in rows if "eval_loss" in r] == [3, 6], rows
    if stage == 0:
        # submitting a finished run again trains nothing: refused, a new name offered
        again = cli("submit", str(spec), ok=None)
        assert again.exit_code == 2, again.output
        assert "this run has already finished" in again.output
        assert "--set name=z0-2" in again.output
    losses = _losses(run)
    assert sorted(losses) == list(range(1, 7)) and all(math.isfinite(v) for v in losses.values())
    ds = json.loads((run / "ds_config.json").read_text())
    assert ds["zero_optimization"]["stage"] == stage
    # the exported model is a Hugging Face folder that loads back as trained: every weight
    # equals the trained engine's, read from DeepSpeed's own final checkpoint (its fp32
    # weights, gathered from the ranks' partitions by DeepSpeed's zero_to_fp32 for ZeRO 1-3)
    out = subprocess.run([sys.executable, "-c", EXPORT_PROBE, str(run), str(stage)], text=True,
                         capture_output=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    # the last line (DeepSpeed's zero_to_fp32 prints its progress before it)
    tag, compared, params, differ_from_init, worst = out.stdout.strip().splitlines()[-1].split()
    assert tag == "step6" and int(compared) == int(params) > 0, out.stdout
    assert float(worst) == 0.0, f"exported weights differ from the trained ones by {worst}"
    assert int(differ_from_init) == int(params), "some exported weights were never trained"
    store = tmp_path / "team.db" if stage == 1 else run / "mlflow.db"   # a given URI
    assert (run / "mlflow.db").exists() == (stage != 1)
    with sqlite3.connect(store) as db:
        logged = db.execute("select count(*) from metrics where key = 'loss'").fetchone()[0]
        evals = db.execute("select count(*) from metrics where key = 'eval_loss'").fetchone()[0]
        versions = db.execute("select name, version from model_versions").fetchall()
    assert logged == 6 and evals >= 2
    assert versions == ([(f"tiny-z{stage}", 1)] if stage == 3 else [])


BUILD_OPS = """
from deepspeed.accelerator import get_accelerator
for name in ("ShareMemCommBuilder", "FusedAdamBuilder"):
    get_accelerator().create_op_builder(name).load()
"""


@dataclass(frozen=True)
class Wall:
    """The walltime runs, sized from this machine's speed measured now (never assumed): a
    job's walltime leaves room for a start-up 3 times slower than the one measured, and the
    run needs more training time than one job can give, however fast the machine. (Slower
    still, the ranks stop after their first step and the next job goes on; only a start-up
    longer than the whole walltime would end the chain.)"""

    steps: int
    walltime_s: int
    reference: list[dict[str, Any]]     # the same run without any interruption


def _launch_here(folder: Path, spec: Path, timeout: float) -> float:
    """Plan and run a kit spec through `abcitrain launch` outside any scheduler; return the
    epoch second the launch began."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCITRAIN_")}
    subprocess.run([sys.executable, "-m", "abcitrain", "plan", str(spec)], cwd=folder,
                   env=env, check=True, capture_output=True)
    began = time.time()
    subprocess.run([sys.executable, "-m", "abcitrain", "launch", "--nproc-per-node", "2", "--",
                    "python", "jobs/train.py", f"runs/{spec.stem}/train.json"], cwd=folder,
                   env=env, check=True, capture_output=True, timeout=timeout)
    return began


def _wall_spec(folder: Path, cluster: str, steps: int, **more: Any) -> Path:
    return _kit_spec(folder, "wall", cluster, mode="cpt", data="jobs/data/cpt.txt", seq_len=32,
                     steps=steps, zero=1, save_every=100, export=False, lr=5e-4, **more)


@pytest.fixture(scope="module")
def wall(tmp_path_factory: pytest.TempPathFactory) -> Wall:
    """Measure the start-up (launch to first step) and the step rate with a short run, size
    the walltime runs from them, and train the reference run uninterrupted."""
    # The first DeepSpeed start of a test session builds its ops: the CPU communication op
    # (about 35 s here), and FusedAdam's CPU build (about 40 s) for the test schedulers'
    # "gpu" resource type, whose plans use it. Once per run, not in every job: built here
    # first, so that neither the calibration nor a walltime run's first job counts it as
    # start-up (one did: its whole window went to the build).
    subprocess.run([sys.executable, "-c", BUILD_OPS], check=True, capture_output=True,
                   timeout=900)
    probe = tmp_path_factory.mktemp("calibrate")
    began = _launch_here(probe, _wall_spec(probe, "local", 60), 600)
    rows = _rows(probe / "runs" / "wall")
    startup = rows[0]["time"] - began
    rate = (len(rows) - 1) / (rows[-1]["time"] - rows[0]["time"])
    before_stop = math.ceil(3 * startup) + 10          # a job's time until the stop signal
    # more training than one job's whole window holds, in whole hundreds (the loss windows)
    steps = max(300, math.ceil(rate * before_stop * 1.3 / 100) * 100)
    folder = tmp_path_factory.mktemp("reference")
    _launch_here(folder, _wall_spec(folder, "local", steps), 60 + 4 * steps / rate)
    return Wall(steps, before_stop + WALL_STOP_BEFORE_S, _rows(folder / "runs" / "wall"))


def _status(job_id: str) -> dict[str, Any] | None:
    rows: list[dict[str, Any]] = json.loads(cli("status", "--json").output)
    return next((r for r in rows if r["job_id"] == job_id), None)


def _walltime_run(tmp_path: Path, cluster: str, wall: Wall) -> None:
    steps = wall.steps
    spec = _wall_spec(tmp_path, cluster, steps, walltime_text=str(wall.walltime_s),
                      walltime={"signal": "USR2", "stop_before": WALL_STOP_BEFORE_S,
                                "max_jobs": 10})
    first = cli("submit", str(spec)).output.split()[3]
    run = tmp_path / "runs" / "wall"

    def finished() -> Any:
        state = run / "state.json"
        if state.is_file() and json.loads(state.read_text())["status"] == "done":
            last = json.loads(state.read_text())["job_id"]
            row = _status(last)
            return row if row and row["state"] in TERMINAL else None
        return None

    last = wait_for(finished, 10 * (wall.walltime_s + 60), f"the walltime run on {cluster}")
    assert last["state"] == "COMPLETED", last
    jobs = _jobs_of(run)
    assert len(jobs) >= 2 and jobs[0] == first, jobs
    first_log = cli("logs", first).output
    assert "walltime is near, asking the ranks to checkpoint and stop" in first_log
    assert "submitting job 2 of at most 10 to continue" in first_log
    rows = _rows(run)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))   # each step once
    assert json.loads((run / "state.json").read_text())["step"] == steps
    # The learning-rate schedule is a function of the step alone: equal to the reference's
    # at every step means every resumed job restored the scheduler where it stopped.
    reference = wall.reference
    assert [r["lr"] for r in rows] == pytest.approx([r["lr"] for r in reference], rel=1e-9)
    # The loss curve: float sums in another process drift at the last bit and a long run
    # amplifies that, so the losses are compared as means: over the 20 steps after each
    # resume (a fresh optimizer or lost weights would jump there) and per 100 steps. A
    # modest learning rate keeps the loss well above 0, where relative drift is small.
    mine, ref = _losses(run), {r["step"]: r["loss"] for r in reference}
    resumes = [r["step"] for prev, r in itertools.pairwise(rows)
               if r["job_id"] != prev["job_id"]]
    assert len(resumes) == len(jobs) - 1
    windows = [range(k, min(k + 20, steps + 1)) for k in resumes]
    windows += [range(k, k + 100) for k in range(1, steps, 100)]
    for steps in windows:
        assert _mean(mine, steps) == pytest.approx(_mean(ref, steps), rel=0.1, abs=0.02), steps


def test_walltime_stop_and_resume_on_the_local_cluster(
        tmp_path: Path, wall: Wall, local_jobs: list[str]) -> None:
    _walltime_run(tmp_path, "local", wall)


def test_walltime_stop_and_resume_on_real_slurm(
        tmp_path: Path, slurm_cluster: None, wall: Wall) -> None:
    _walltime_run(tmp_path, "slurm-test", wall)


def test_walltime_stop_and_resume_on_real_grid_engine(
        tmp_path: Path, sge_cluster: None, wall: Wall) -> None:
    _walltime_run(tmp_path, "sge-test", wall)


def test_walltime_stop_and_resume_on_real_pbs(
        tmp_path: Path, pbs_cluster: None, wall: Wall, monkeypatch: pytest.MonkeyPatch) -> None:
    """ABCI 3.0's scheduler. PBS's commands come LAST on PATH here, as /etc/profile.d/pbs.sh
    puts them (and as a PBS job's own PATH has them) on a machine whose /usr/bin/qsub is
    Grid Engine's: the submit here and the successor's submit inside the job both find
    PBS's own."""
    monkeypatch.setenv("PATH", f"{os.environ['PATH']}:/opt/pbs/bin")
    monkeypatch.setenv("PBS_CONF_FILE", "/etc/pbs.conf")
    _walltime_run(tmp_path, "pbs-test", wall)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the ranks run in a session of their own)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """Kill every rank with SIGKILL mid-run (no chance to save), start it again: it resumes
    from the last periodic checkpoint and still ends at exactly the requested steps."""
    spec = _kit_spec(tmp_path, "crash", mode="cpt", data="jobs/data/cpt.txt", seq_len=32,
                     steps=300, zero=2, save_every=50, export=False, lr=5e-4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCITRAIN_")}
    subprocess.run([sys.executable, "-m", "abcitrain", "plan", str(spec)], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    argv = [sys.executable, "-m", "abcitrain", "launch", "--nproc-per-node", "2", "--",
            "python", "jobs/train.py", "runs/crash/train.json"]
    run = tmp_path / "runs" / "crash"
    first = subprocess.Popen(argv, cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run / "checkpoints" / "latest"      # DeepSpeed writes it once a save is whole
    try:
        # an event, not a clock: kill once a periodic checkpoint exists, whenever that is
        wait_for(lambda: latest.is_file(), 240, "the first periodic checkpoint")
    finally:
        for pid in [*_descendants(first.pid), first.pid]:   # every rank, then the launcher
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        first.wait()
    assert not (run / "state.json").exists()      # it never got to say anything
    # the last checkpoint that was whole when the ranks died, however far they had gone
    saved = int(latest.read_text().strip().removeprefix("step"))
    assert saved % 50 == 0 and 50 <= saved < 300, saved
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"step {saved} of 300" in done.stdout   # resumed at the last checkpoint
    state = json.loads((run / "state.json").read_text())
    assert (state["status"], state["step"]) == ("done", 300)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    restart = len(steps) - (300 - saved)          # where the second job's rows begin
    assert steps[restart:] == list(range(saved + 1, 301))
    assert steps[:restart] == list(range(1, restart + 1)) and restart >= saved


@pytest.mark.parametrize("kind", ["deepspeed", "mpirun"])
def test_every_launcher_kind_trains_on_one_node(tmp_path: Path, kind: str) -> None:
    """ABCI's profiles launch with DeepSpeed's runner; mpirun is the other choice. On one
    node (this machine, 2 ranks) each starts the kit for real. (Across nodes:
    test_launch_ssh.py.)"""
    spec = _kit_spec(tmp_path, kind, zero=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCITRAIN_")}
    # the tests run as root, which Open MPI refuses unless told twice
    env.update(DS_ACCELERATOR="cpu", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run([sys.executable, "-m", "abcitrain", "plan", str(spec)], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-m", "abcitrain", "launch", "--launcher", kind, "--nproc-per-node",
         "2", "--", "python", "jobs/train.py", f"runs/{kind}/train.json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert f"launcher {kind}" in out and "sft on 2 ranks" in out
    state = json.loads((tmp_path / "runs" / kind / "state.json").read_text())
    assert (state["status"], state["step"]) == ("done", 6)


def test_the_kit_trains_across_two_real_slurm_nodes(tmp_path: Path, slurm_cluster: None) -> None:
    """Two Slurm nodes (both on this machine), one rank each: srun starts a torchrun per node,
    they meet at a c10d rendezvous on the first node's name, ZeRO-3 partitions over both."""
    spec = _kit_spec(tmp_path, "two", "slurm-test", zero=3, ranks_per_node=1, steps=8)
    data = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump({**data, "nodes": 2}))
    result = cli("submit", "--wait", str(spec), ok=None)
    assert result.exit_code == 0, result.output
    assert "2 nodes from ABCITRAIN_NODEFILE, 1 rank each (2 in all), master n1:" in \
        result.output
    assert "srun --nodes=2 --ntasks-per-node=1" in result.output
    assert "sft on 2 ranks" in result.output
    run = tmp_path / "runs" / "two"
    assert json.loads((run / "state.json").read_text())["step"] == 8
    assert sorted(_losses(run)) == list(range(1, 9))
    assert (run / "model" / "model.safetensors").is_file()
