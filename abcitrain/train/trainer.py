"""The training loop of the starter kit: Hugging Face model, DeepSpeed engine, resumable.

One process per rank, started by ``abcitrain launch``. It reads the plan's ``train.json`` and
``ds_config.json``, loads the model and tokenizer from a local folder (compute nodes often
have no internet), resumes from the newest DeepSpeed checkpoint if there is one, and trains
to exactly ``steps`` optimizer steps.

Stopping before the walltime: the launcher sends the configured signal (USR2 by default).
Every rank only sets a flag; after each optimizer step the ranks add their flags up in the
same all-reduce that averages the loss, so they all stop after the same step, save one
checkpoint with that step in it, and record ``stopped`` in ``state.json``. The next job
resumes at the following step: no step is lost or done twice. After a crash the next job
resumes from the last periodic checkpoint (``save_every``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..util.words import plural
from .config import TrainConfig, from_json, lr_factor
from .oplocks import check_stale_locks, start_deadline

STATE_FILE = "state.json"
CHECKPOINTS = "checkpoints"


@dataclass
class StopFlag:
    """Set by the walltime signal; read once per step."""

    raised: bool = False

    def install(self, signum: int) -> None:
        """Catch ``signum`` (replacing an inherited 'ignore')."""
        def handler(_sig: int, _frame: FrameType | None) -> None:
            self.raised = True
        signal.signal(signum, handler)


def map_mpi_environment() -> None:
    """Under mpirun, give torch.distributed the RANK/LOCAL_RANK/WORLD_SIZE it reads."""
    pairs = {"RANK": ("OMPI_COMM_WORLD_RANK", "PMI_RANK"),
             "LOCAL_RANK": ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"),
             "WORLD_SIZE": ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")}
    for name, sources in pairs.items():
        for source in sources:
            if name not in os.environ and source in os.environ:
                os.environ[name] = os.environ[source]


def write_state(out: Path, status: str, step: int, steps: int) -> None:
    """Record how the run stands, for the launcher (continue or not) and for people."""
    tmp = out / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps({"status": status, "step": step, "steps": steps,
                               "job_id": os.environ.get("ABCITRAIN_JOB_ID", ""),
                               "time": time.time()}) + "\n")
    tmp.replace(out / STATE_FILE)


def run_finished(out: Path) -> int | None:
    """The step a run in ``out`` finished at, from its state.json; None when it has not
    finished (never started, stopped at a walltime, or crashed)."""
    try:
        state = json.loads((out / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(state, dict) and state.get("status") == "done":
        return int(state.get("step") or 0)
    return None


def load_run(train_json: Path) -> tuple[TrainConfig, dict[str, Any], Path]:
    """The plan's training config, DeepSpeed config and run folder."""
    plan = json.loads(train_json.read_text())
    out = train_json.resolve().parent
    ds_config = json.loads((out / "ds_config.json").read_text())
    return from_json(plan["train"]), ds_config, out


def build_model(cfg: TrainConfig, dtype: Any) -> tuple[Any, Any]:
    """The tokenizer and model from the local model folder (no download)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(cfg.model, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.init == "random":
        model = AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            AutoConfig.from_pretrained(cfg.model, local_files_only=True), dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype,
                                                     local_files_only=True)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return tokenizer, model


def load_data(cfg: TrainConfig, tokenizer: Any) -> tuple[Any, Any]:
    """Training and evaluation examples for the configured mode."""
    from .data import load_cpt, load_sft, split
    loader = load_cpt if cfg.mode == "cpt" else load_sft
    train = loader(Path(cfg.data), tokenizer, cfg.seq_len)
    if cfg.eval_data:
        return train, loader(Path(cfg.eval_data), tokenizer, cfg.seq_len)
    return split(train, cfg.eval_fraction, cfg.seed)


def train(train_json: Path) -> int:
    """Train (or continue training) the run planned in ``train_json``; returns the step
    reached."""
    map_mpi_environment()
    cfg, ds_config, out = load_run(train_json)
    finished = run_finished(out)
    if finished is not None:
        # the run has reached its steps: starting it again would only repeat its final
        # evaluation (and record it twice); nothing to train
        if os.environ.get("RANK", "0") == "0":
            print(f"abcitrain: the run in {out} already finished at step {finished}; "
                  "nothing to train (give the job a new name for a new run)", flush=True)
        return finished
    stop = StopFlag()
    stop.install(cfg.walltime.signum)
    # The launcher's deadline reaches every node, also those its signal cannot.
    stop_at = float(os.environ.get("ABCITRAIN_STOP_AT") or "inf")

    import deepspeed
    import torch
    import torch.distributed as dist

    from .data import StepSampler
    from .tracking import Tracker

    on_gpu = torch.cuda.is_available()
    deepspeed.init_distributed(dist_backend="nccl" if on_gpu else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dtype = (torch.bfloat16 if ds_config.get("bf16", {}).get("enabled")
             else torch.float16 if ds_config.get("fp16", {}).get("enabled") else torch.float32)
    torch.manual_seed(cfg.seed)
    zero3 = None
    if ds_config.get("zero_optimization", {}).get("stage") == 3:
        # Kept alive while the model is built: transformers then creates (or loads) the
        # weights already partitioned (zero.Init), so no rank ever holds the whole model.
        from transformers.integrations.deepspeed import HfDeepSpeedConfig
        zero3 = HfDeepSpeedConfig(ds_config)  # type: ignore[no-untyped-call]
    tokenizer, model = build_model(cfg, dtype)
    train_set, eval_set = load_data(cfg, tokenizer)
    check_stale_locks()          # a killed op build's lock would stall the engine forever
    def schedule(optimizer: Any) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda done: lr_factor(done, cfg.warmup_steps, cfg.steps))

    with start_deadline():
        engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                          config=ds_config, lr_scheduler=schedule)
    micro, accum = engine.train_micro_batch_size_per_gpu(), engine.gradient_accumulation_steps()
    sampler = StepSampler(len(train_set), cfg.seed, micro, accum, world)

    ckpt = out / CHECKPOINTS
    step = 0
    if (ckpt / "latest").is_file():
        _, client = engine.load_checkpoint(str(ckpt))
        step = int((client or {}).get("step", 0))
    tracker = Tracker(out, cfg.experiment or out.name, cfg.tracking_uri, active=rank == 0,
                      run_name=cfg.run_name)
    tracker.params({**{k: v for k, v in cfg.to_json().items() if k != "walltime"},
                    "world_size": world, "micro_batch": micro, "grad_accum": accum,
                    "zero_stage": engine.zero_optimization_stage()})
    device = engine.device
    tokens_per_step = cfg.global_batch * cfg.seq_len
    if rank == 0:
        print(f"abcitrain: {cfg.mode} on {plural(world, 'rank')}, step {step} of {cfg.steps}, "
              f"micro-batch {micro} x {accum} accumulation", flush=True)

    def save(tag_step: int) -> None:
        engine.save_checkpoint(str(ckpt), tag=f"step{tag_step}",
                               client_state={"step": tag_step})

    stopped = False
    while step < cfg.steps:
        began = time.perf_counter()
        engine.train()
        loss_sum = torch.zeros((), device=device)
        for m in range(accum):
            batch = {k: t.to(device) for k, t in
                     train_set.rows(sampler.indices(step, m, rank)).items()}
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            loss_sum += loss.detach().float()
        step += 1
        # One all-reduce carries the loss and every rank's stop flag.
        stopping = stop.raised or time.time() >= stop_at
        packed = torch.stack([loss_sum / accum, torch.tensor(float(stopping), device=device)])
        dist.all_reduce(packed)
        mean_loss, stop_votes = packed[0].item() / world, packed[1].item()
        elapsed = time.perf_counter() - began
        tracker.metrics(step, {"loss": mean_loss, "lr": engine.get_lr()[0],
                               "tokens_per_s": tokens_per_step / elapsed,
                               "step_time_s": elapsed})
        if eval_set is not None and cfg.eval_every and step % cfg.eval_every == 0:
            tracker.metrics(step, {"eval_loss": evaluate(engine, eval_set, micro, rank, world)})
        if stop_votes > 0 and step < cfg.steps:
            save(step)
            stopped = True
            break
        if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
            save(step)

    # The run has reached its end (finished, or stopped and saved below): a stop request now
    # has nothing to stop. Ignored from here, it cannot kill a rank that is still saving or
    # exiting: Python puts a handled signal back to its default action (terminate) as the
    # interpreter shuts down, and a live PBS job's stop signal once landed just then.
    signal.signal(cfg.walltime.signum, signal.SIG_IGN)
    if not stopped:
        # the final evaluation, unless the loop's last step already made it (it was
        # recorded twice)
        if eval_set is not None and not (cfg.eval_every and step % cfg.eval_every == 0):
            tracker.metrics(step, {"eval_loss": evaluate(engine, eval_set, micro, rank, world)})
        save(step)
        if cfg.export:
            export(engine, tokenizer, out / "model", rank, tracker, cfg.register_as)
    if rank == 0:
        write_state(out, "stopped" if stopped else "done", step, cfg.steps)
        print(f"abcitrain: {'stopped' if stopped else 'finished'} at step {step} of "
              f"{cfg.steps}", flush=True)
    tracker.end(finished=not stopped)
    del zero3
    dist.barrier()
    engine.destroy()
    dist.destroy_process_group()
    return step


def evaluate(engine: Any, examples: Any, micro: int, rank: int, world: int) -> float:
    """Mean loss over the held-out examples (every rank takes its share; 'nan' if none)."""
    import torch
    import torch.distributed as dist
    engine.eval()
    total = torch.zeros(2, device=engine.device)
    with torch.no_grad():
        for first in range(rank * micro, len(examples), micro * world):
            rows = list(range(first, min(first + micro, len(examples))))
            batch = {k: t.to(engine.device) for k, t in examples.rows(rows).items()}
            total += torch.stack([engine(**batch).loss.float() * len(rows),
                                  torch.tensor(float(len(rows)), device=engine.device)])
    dist.all_reduce(total)
    engine.train()
    return float(total[0] / total[1]) if total[1] > 0 else math.nan


def export(engine: Any, tokenizer: Any, target: Path, rank: int, tracker: Any,
           register_as: str | None) -> None:
    """Write the trained model in Hugging Face format (and register it when asked).

    Under ZeRO-3 the weights are gathered first (every rank takes part); the model is then
    saved from rank 0 with ``save_pretrained`` so ``from_pretrained`` reads it back as is.
    """
    import deepspeed
    import torch
    module = engine.module
    if engine.zero_optimization_stage() == 3:
        params = list(module.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    else:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    if rank == 0:
        target.mkdir(parents=True, exist_ok=True)
        module.save_pretrained(str(target), state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(str(target))
        if register_as:
            version = tracker.register(target, register_as)
            print(f"abcitrain: registered {register_as} version {version}", flush=True)
    torch.distributed.barrier()
