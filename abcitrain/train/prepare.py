"""A training spec becomes a runnable job: plan it, write its configs, fill in its command.

A spec with a ``train:`` section and no ``command`` runs the kit through the launcher::

    PYTHON -m abcitrain launch --nproc-per-node R --signal USR2 --stop-before S \\
        --state RUN/state.json [--resubmit SPEC --max-jobs M] -- python SCRIPT RUN/train.json

``PYTHON`` is the interpreter abcitrain runs on now (the environment with torch and
DeepSpeed, on a cluster's shared file system); ``nodes: auto`` becomes the planned count.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from ..domain import ClusterProfile, JobSpec
from ..errors import InputError, Problem
from ..memory.states import GB
from ..util.words import plural
from .config import TrainConfig, parse_train
from .planner import TrainPlan, plan_training, write_plan
from .trainer import run_finished

#: Settings a self-continuing job hands to the submission it makes (and so to every job of
#: the chain): abcitrain's folders, and torch's extension folder, where DeepSpeed's JIT-built
#: ops live (a chain keeps the ops its first job found or built).
CARRIED = ("ABCITRAIN_DATA_DIR", "ABCITRAIN_CONFIG_DIR", "ABCITRAIN_CLUSTERS_PATH",
           "ABCITRAIN_LOCAL_SPOOL", "TORCH_EXTENSIONS_DIR")


def why_nothing_fits(plan: TrainPlan) -> list[Problem]:
    """One problem per node count tried: the smallest configuration and how far it is over."""
    if not plan.tried:
        return [Problem("train.global_batch", note) for note in plan.notes] or [
            Problem("train", "no configuration could be tried")]
    out = []
    for nodes in sorted({c.nodes for c in plan.tried}):
        here = [c for c in plan.tried if c.nodes == nodes]
        on_gpu = [c for c in here if c.fits_gpu]
        if on_gpu:     # the ranks' memory would do: the host cannot hold what is offloaded
            best = min(on_gpu, key=lambda c: c.host_bytes)
            assert best.host_budget is not None
            out.append(Problem("train", (
                f"{plural(nodes, 'node')}: ZeRO-{best.zero} with offload {best.offload} fits the "
                f"GPUs but puts {best.host_bytes / GB:.1f} GB in each node's CPU memory, "
                f"over the {best.host_budget / GB:.1f} GB usable")))
            continue
        best = min(here, key=lambda c: c.need)
        out.append(Problem("train", (
            f"{plural(nodes, 'node')}: the smallest configuration (ZeRO-{best.zero}, offload "
            f"{best.offload}, micro-batch {best.micro_batch}) peaks at "
            f"{best.need / GB:.1f} GB per rank ({best.phase}), over the {plan.budget / GB:.1f} GB "
            f"usable ({plan.memory_per_rank / GB:.1f} GB less {plan.cfg.margin:.0%} margin)")))
    return out[:3] + ([Problem("train", f"... and {len(out) - 3} more node counts")]
                      if len(out) > 3 else [])


def launch_command(spec: JobSpec, plan: TrainPlan, run_dir: str) -> tuple[str, ...]:
    """The job's command: abcitrain's launcher around the training script."""
    cfg = plan.cfg
    cmd = [sys.executable, "-m", "abcitrain", "launch",
           "--nproc-per-node", str(plan.ranks_per_node), "--signal", cfg.walltime.signal,
           "--stop-before", str(cfg.walltime.stop_before_s), "--state", f"{run_dir}/state.json"]
    if cfg.launcher != "auto":
        cmd += ["--launcher", cfg.launcher]
    for arg in cfg.mpirun_args:
        cmd += [f"--mpirun-arg={arg}"]
    if spec.source and cfg.walltime.max_jobs > 1:
        cmd += ["--resubmit", spec.source, "--max-jobs", str(cfg.walltime.max_jobs)]
    return (*cmd, "--", "python", cfg.script, f"{run_dir}/train.json")


def prepare(spec: JobSpec, profile: ClusterProfile, write: bool,
            project_dir: Path | None = None) -> tuple[JobSpec, TrainPlan]:
    """Plan ``spec``'s training; refuse (InputError) when nothing fits; return the spec with
    its node count and command filled in. ``write`` puts the configs in the run folder."""
    assert spec.train is not None
    if spec.sweep:
        return _prepare_sweep(spec, profile, write, project_dir)
    cfg: TrainConfig = parse_train(spec.train)
    if cfg.walltime.stop_before_s >= spec.walltime_s:
        raise InputError(f"{spec.name}: the stop signal would come before the job starts",
                         [Problem("train.walltime.stop_before", (
                             f"{cfg.walltime.stop_before_s} s is not shorter than the "
                             f"walltime ({spec.walltime_s} s): leave time to train"))])
    plan = plan_training(spec, profile, cfg, project_dir, auto_nodes=spec.nodes == 0)
    if plan.chosen is None:
        raise InputError(f"{spec.name}: no configuration fits {spec.resource} on "
                         f"{profile.name}", why_nothing_fits(plan))
    run_dir = cfg.output_for(spec.name)
    if write:
        root = project_dir or Path.cwd()
        finished = run_finished(root / run_dir)
        if finished is not None:
            raise InputError(f"{spec.name}: this run has already finished", [Problem(
                "name", f"{run_dir} finished at step {finished} of {cfg.steps} (its "
                "state.json): submitting it again would train nothing and only repeat its "
                f"final evaluation. For a new run, give it a new name (--set "
                f"name={spec.name}-2), or move {run_dir} aside")])
        if not (root / cfg.model / "config.json").is_file():
            raise InputError(f"{spec.name}: the model is not on disk", [Problem(
                "train.model", f"{cfg.model!r} has no config.json here: put the model "
                "and tokenizer in a local folder (compute nodes often have no internet); "
                "a preset name only serves abcitrain plan")])
        write_plan(plan, spec, root / run_dir)
    command = spec.command or launch_command(spec, plan, run_dir)
    env = dict(spec.env)
    if cfg.walltime.max_jobs > 1:
        # The job submits its successor: with the same abcitrain folders and profiles as
        # this submission (a scheduler may not pass the environment on).
        env.update({k: os.environ[k] for k in CARRIED if os.environ.get(k)})
    return replace(spec, nodes=plan.nodes, command=command, env=env), plan


#: A sweep task's run folder under the spec's: the job shell expands the index per task.
TASK_DIR = "task-${ABCITRAIN_ARRAY_INDEX}"


def _prepare_sweep(spec: JobSpec, profile: ClusterProfile, write: bool,
                   project_dir: Path | None) -> tuple[JobSpec, TrainPlan]:
    """A training sweep: each task's training config (the spec's, with the task's train.*
    parameters) is checked and planned on its own and written to its own run folder
    (RUN/task-I); all tasks log to ONE MLflow experiment (the spec's, else its name), each
    as a run named by its parameters. Returns the spec and the first task's plan."""
    from ..util.params import label, train_overrides, with_overrides
    from .config import train_problems

    assert spec.train is not None
    problems: list[Problem] = []
    configs: list[TrainConfig] = []
    for i, task in enumerate(spec.sweep, start=1):
        data = with_overrides(dict(spec.train), train_overrides(task))
        found = train_problems(data)
        problems += [Problem(f"sweep task {i}: {p.where}", p.message, p.severity)
                     for p in found]
        if not found:
            configs.append(parse_train(data))
    if problems:
        raise InputError(f"{spec.name}: sweep tasks have errors", problems)
    base = configs[0].output_for(spec.name)
    if any(c.walltime.max_jobs > 1 for c in configs):
        raise InputError(f"{spec.name}: a sweep cannot continue itself", [Problem(
            "train.walltime.max_jobs", "a job that resubmits itself would resubmit every "
            "task of the sweep: use max_jobs 1, or submit the tasks as separate specs")])
    root = project_dir or Path.cwd()
    tracking = configs[0].tracking_uri or f"sqlite:///{(root / base / 'mlflow.db').resolve()}"
    plans: list[TrainPlan] = []
    for i, (task, cfg) in enumerate(zip(spec.sweep, configs, strict=True), start=1):
        cfg = replace(cfg, experiment=cfg.experiment or spec.name, tracking_uri=tracking,
                      run_name=f"task-{i} {label(task)}")
        plan = plan_training(spec, profile, cfg, project_dir, auto_nodes=spec.nodes == 0)
        if plan.chosen is None:
            raise InputError(f"{spec.name}: sweep task {i} ({label(task)}) fits nowhere on "
                             f"{spec.resource}", why_nothing_fits(plan))
        plans.append(plan)
    nodes = {p.nodes for p in plans}
    if len(nodes) > 1:
        raise InputError(f"{spec.name}: the sweep's tasks need different node counts", [
            Problem("sweep", f"the plans ask for {sorted(nodes)} nodes: an array job has one "
                    "node count; sweep these parameters in separate specs")])
    if write:
        if not (root / configs[0].model / "config.json").is_file():
            raise InputError(f"{spec.name}: the model is not on disk", [Problem(
                "train.model", f"{configs[0].model!r} has no config.json here")])
        for i, plan in enumerate(plans, start=1):
            write_plan(plan, spec, root / base / f"task-{i}")
    command = spec.command or launch_command(spec, plans[0], f"{base}/{TASK_DIR}")
    return replace(spec, nodes=plans[0].nodes, command=command), plans[0]

