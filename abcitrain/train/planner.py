"""``abcitrain plan``: the cheapest way to train a job's model that fits its GPUs.

For every node count the resource type allows (or the one the spec fixes), every ZeRO stage
and offload choice and every micro-batch that divides the global batch, the PEAK memory of a
training step per rank (``memory.peak``: forward, backward and optimizer step, with the
communication settings this module writes into ds_config.json) is checked against the
type's GPU memory less a safety margin; what is offloaded to the CPU (the peak host bytes of
the node's ranks) against the node's host memory less the same margin. The cheapest
configuration is the one with the fewest nodes (points per hour grow with nodes); at equal
price: no offload before offload (it is slow), then the largest micro-batch any stage fits
(fewer accumulation steps), then the stage with the most headroom, so a configuration that
only just fits is not chosen over one that fits with room. Step time is not modelled, so
when offload keeps a job on fewer nodes the plan also says what the job costs without it.
Nothing here imports torch.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..domain import ClusterProfile, JobSpec, ResourceType
from ..errors import InputError, Problem
from ..memory.peak import Comm, StepPeak, step_peak
from ..memory.shapes import ModelShape, from_hf_config, resolve
from ..memory.states import GB, MemoryEstimate, TrainingSetup, estimate
from ..util.words import plural
from .config import TrainConfig

#: GPUs without bfloat16 (compute capability below 8.0): they train in fp16 with loss scaling.
NO_BF16 = ("V100", "P100", "T4", "K80", "P40", "TITAN V")
OFFLOAD_ORDER = ("none", "optimizer", "optimizer+params")
HARD_NODE_CAP = 128


@dataclass(frozen=True)
class Candidate:
    """One configuration, what a rank holds between steps and its peak during one."""

    nodes: int
    zero: int
    offload: str
    micro_batch: int
    grad_accum: int
    estimate: MemoryEstimate
    budget: int
    #: The step's phases and their bytes (``memory.peak``).
    peak: StepPeak
    #: The bytes per rank judged against ``budget``: the device peak on a GPU, the whole
    #: rank's (device and host are one memory) without one.
    need: int
    #: The communication settings written into ds_config.json (and counted in ``peak``).
    comm: Comm
    #: Host memory per node at the busiest phase: what is offloaded, and on a type without
    #: GPUs every rank.
    host_bytes: int = 0
    #: Usable host memory per node (less the margin); None when the profile does not say.
    host_budget: int | None = None

    @property
    def fits_gpu(self) -> bool:
        """True when the per-rank peak is within the usable (GPU) memory."""
        return self.need <= self.budget

    @property
    def phase(self) -> str:
        """The phase of the step that reaches ``need``."""
        return self.peak.busiest(whole_rank=self.need != self.peak.device_peak).name

    @property
    def headroom(self) -> int:
        """Usable bytes per rank left free at the peak (negative: over by that much)."""
        return self.budget - self.need

    @property
    def fits_host(self) -> bool:
        """True when what the node's CPU memory holds is within its usable share."""
        return self.host_budget is None or self.host_bytes <= self.host_budget

    @property
    def fits(self) -> bool:
        """True when both the ranks' memory and the node's host memory suffice."""
        return self.fits_gpu and self.fits_host

    def key(self) -> tuple[int, int, int, int, int]:
        """Cheapest first: nodes, then no offload, the larger micro-batch, the most
        headroom, the lower stage."""
        return (self.nodes, OFFLOAD_ORDER.index(self.offload), -self.micro_batch,
                -self.headroom, self.zero)


@dataclass(frozen=True)
class TrainPlan:
    """The chosen configuration, what was tried, and what it costs."""

    cfg: TrainConfig
    shape: ModelShape
    precision: str
    ranks_per_node: int
    on_gpu: bool
    memory_per_rank: int
    budget: int
    chosen: Candidate | None
    tried: tuple[Candidate, ...]
    points_per_hour: Decimal | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def nodes(self) -> int:
        """Nodes of the chosen configuration (the spec's when nothing fits)."""
        return self.chosen.nodes if self.chosen else 0


def model_shape(model: str, project_dir: Path | None = None) -> ModelShape:
    """The model's shape: a local folder's config.json, or a preset name for planning."""
    folder = Path(model) if project_dir is None or Path(model).is_absolute() \
        else project_dir / model
    if (folder / "config.json").is_file():
        return from_hf_config(folder / "config.json")
    return resolve(model, exact=True)


def pick_precision(cfg: TrainConfig, rtype: ResourceType) -> tuple[str, str | None]:
    """The precision to train in, and why when it was chosen for the user."""
    if cfg.precision != "auto":
        return cfg.precision, None
    if not rtype.gpus:
        return "fp32", "no GPU: fp32 (bf16 on CPU is slower and fp16 is refused there)"
    model = (rtype.gpu_model or "").upper()
    if any(old in model for old in NO_BF16):
        return "fp16", f"{rtype.gpu_model} has no bfloat16: fp16 with loss scaling"
    return "bf16", f"{rtype.gpu_model or 'the GPU'} supports bfloat16"


def _micro_batches(per_rank: int, fixed: int | str) -> list[int]:
    if isinstance(fixed, int):
        return [fixed] if per_rank % fixed == 0 else []
    return sorted((m for m in range(1, min(per_rank, 64) + 1) if per_rank % m == 0),
                  reverse=True)


def plan_training(spec: JobSpec, profile: ClusterProfile, cfg: TrainConfig,
                  project_dir: Path | None = None, auto_nodes: bool = True,
                  when: dt.date | None = None) -> TrainPlan:
    """Search the configurations for ``spec`` on its resource type; raise InputError for a
    plan that cannot be made (a CPU-only type without ranks_per_node, an unknown model)."""
    rtype = profile.resource_types[spec.resource]
    problems = []
    if isinstance(cfg.ranks_per_node, int):
        ranks = cfg.ranks_per_node
    elif rtype.gpus:
        ranks = rtype.gpus
    else:
        ranks = 0
        problems.append(Problem("train.ranks_per_node", f"{spec.resource} has no GPUs: say "
                                "how many ranks to run per node (for example 2)"))
    if rtype.gpus and ranks > rtype.gpus:
        problems.append(Problem("train.ranks_per_node", f"{ranks} ranks on {rtype.gpus} GPUs "
                                "per node: at most one rank per GPU"))
    try:
        shape = model_shape(cfg.model, project_dir)
    except InputError as exc:
        problems += [Problem("train.model", str(p.message)) for p in exc.problems]
    if problems:
        raise InputError(f"cannot plan {spec.name}", problems)
    precision, why = pick_precision(cfg, rtype)
    notes = [why] if why else []
    on_gpu = bool(rtype.gpus and rtype.gpu_memory_gb)
    if on_gpu:
        memory = int((rtype.gpu_memory_gb or 0) * GB)
        buffers = 2 * GB
    else:
        memory = int(rtype.memory_gb * GB / ranks)
        buffers = 0
        notes.append(f"no GPU: each of {plural(ranks, 'rank')} gets 1/{ranks} of the node's "
                     f"{rtype.memory_gb:g} GB")
    budget = int(memory * (1 - cfg.margin))
    host_budget = int(rtype.memory_gb * GB * (1 - cfg.margin)) if rtype.memory_gb else None
    limit = rtype.limits.get(spec.service or profile.default_service)
    max_nodes = min(HARD_NODE_CAP, (limit.max_nodes if limit and limit.max_nodes else
                                    HARD_NODE_CAP))
    node_counts = range(1, max_nodes + 1) if auto_nodes else [spec.nodes]
    stages = [cfg.zero] if isinstance(cfg.zero, int) else [0, 1, 2, 3]
    # Without a GPU, "offload to the CPU" moves nothing anywhere: only when asked for.
    offloads = (cfg.offload,) if cfg.offload != "auto" else OFFLOAD_ORDER if on_gpu else ("none",)
    search = _Search(shape, cfg, precision, ranks, on_gpu, buffers, budget, host_budget)
    tried: list[Candidate] = []
    chosen: Candidate | None = None
    for nodes in node_counts:
        for cand in search.candidates(nodes, stages, offloads):
            tried.append(cand)
            if cand.fits and (chosen is None or cand.key() < chosen.key()):
                chosen = cand
        if chosen is not None:
            break     # more nodes only cost more
    if not any(cfg.global_batch % (n * ranks) == 0 for n in node_counts):
        notes.append(f"global_batch {cfg.global_batch} does not divide over "
                     f"{plural(ranks, 'rank')} per node on any allowed node count")
    pph = None if chosen is None else _points_per_hour(spec, profile, chosen.nodes, when)
    if chosen is not None and chosen.offload != "none" and cfg.offload == "auto" and auto_nodes:
        more = range(chosen.nodes + 1, max_nodes + 1)
        notes.append(_offload_alternative(search, chosen, more, stages, spec, profile, when))
    return TrainPlan(cfg, shape, precision, ranks, on_gpu, memory, budget, chosen,
                     tuple(tried), pph, tuple(notes))


@dataclass(frozen=True)
class _Search:
    """What every candidate of one plan shares."""

    shape: ModelShape
    cfg: TrainConfig
    precision: str
    ranks: int
    on_gpu: bool
    buffers: int
    budget: int
    host_budget: int | None

    def candidates(self, nodes: int, stages: list[int],
                   offloads: tuple[str, ...]) -> list[Candidate]:
        """Every stage x offload x micro-batch on ``nodes`` nodes (none when the global
        batch does not divide over their ranks)."""
        cfg, world = self.cfg, nodes * self.ranks
        if cfg.global_batch % world:
            return []
        found = []
        for stage in stages:
            for offload in offloads:
                if (offload != "none" and stage == 0) or \
                        (offload == "optimizer+params" and stage != 3):
                    continue
                for micro in _micro_batches(cfg.global_batch // world, cfg.micro_batch):
                    found.append(self._candidate(nodes, stage, offload, micro))
        return found

    def _candidate(self, nodes: int, stage: int, offload: str, micro: int) -> Candidate:
        """One configuration; under ZeRO-3, with fewer gathered parameters when DeepSpeed's
        defaults do not fit."""
        cfg, world = self.cfg, nodes * self.ranks
        setup = TrainingSetup(
            precision=self.precision, optimizer="adamw", zero_stage=stage,
            offload=offload, gpus_per_node=self.ranks, nodes=nodes,
            seq_len=cfg.seq_len, micro_batch=micro,
            checkpointing=cfg.gradient_checkpointing,
            # transformers' default attention (sdpa) runs fused kernels that store no
            # scores, on GPUs and on CPUs alike
            flash_attention=True, buffer_bytes=self.buffers, engine=True)
        est = estimate(self.shape, setup)
        cand = None
        for tight in (False, True) if stage == 3 else (False,):
            comm = communication(self.shape, self.on_gpu, tight)
            peak = step_peak(self.shape, setup, comm, torch_adam=not self.on_gpu)
            if self.on_gpu:
                need, host = peak.device_peak, peak.host_peak * self.ranks
            else:
                need = peak.total_peak
                host = need * self.ranks
            cand = Candidate(nodes, stage, offload, micro,
                             cfg.global_batch // (world * micro), est,
                             self.budget, peak, need, comm, host, self.host_budget)
            if cand.fits:
                break
        assert cand is not None
        return cand


def communication(shape: ModelShape, on_gpu: bool, tight: bool = False) -> Comm:
    """What the planner writes into ds_config.json's zero_optimization, and the peak counts.

    Bucket sizes follow the transformers DeepSpeed integration's "auto" values, hidden^2
    elements for the reduce and all-gather buckets, 0.9 hidden^2 for ZeRO-3's prefetch and
    10 hidden for its persistence threshold (DeepSpeed's 5e8-element defaults when the
    hidden size is unknown); overlap_comm on GPUs (it overlaps the reduction with the
    backward pass, for 4.5 x the buckets in memory). ZeRO-3 keeps DeepSpeed's 1e9 for the
    live parameters and the reuse distance, or 1e8 (``tight``) when a configuration does not
    fit otherwise."""
    comm = Comm(overlap_comm=on_gpu)
    if shape.hidden:
        square = shape.hidden * shape.hidden
        comm = replace(comm, reduce_bucket=square, allgather_bucket=square,
                       prefetch_bucket=int(0.9 * square), persistence_threshold=10 * shape.hidden)
    if tight:
        comm = replace(comm, max_live_parameters=10**8, max_reuse_distance=10**8)
    return comm


def _points_per_hour(spec: JobSpec, profile: ClusterProfile, nodes: int,
                     when: dt.date | None) -> Decimal | None:
    """Points per hour for ``nodes`` nodes of the spec's type; None without prices."""
    from ..points.tariffs import quote
    try:
        q = quote(profile, spec.resource, spec.service or profile.default_service,
                  when or dt.date.today())
    except InputError:   # a profile without tariffs: no price, the plan still stands
        return None
    return Decimal(nodes) * q.type_rate * q.service_coeff


def _offload_alternative(search: _Search, chosen: Candidate, more_nodes: range,
                         stages: list[int], spec: JobSpec, profile: ClusterProfile,
                         when: dt.date | None) -> str:
    """The plan prices nodes, not time: say what avoiding the (slow) CPU offload costs."""
    head = (f"offload {chosen.offload} keeps it on {plural(chosen.nodes, 'node')} but every step "
            "waits for the CPU (step time is not modelled)")
    for nodes in more_nodes:
        fitting = [c for c in search.candidates(nodes, stages, ("none",)) if c.fits]
        if fitting:
            best = min(fitting, key=Candidate.key)
            pph = _points_per_hour(spec, profile, nodes, when)
            price = "" if pph is None else f", {pph} points per hour"
            return (f"{head}; without offload it fits on {plural(nodes, 'node')}, "
                    f"ZeRO-{best.zero}, "
                    f"micro-batch {best.micro_batch}{price}: set nodes: {nodes} and "
                    "train.offload: none to choose that")
    return f"{head}; without offload it fits on no node count allowed"


def deepspeed_config(plan: TrainPlan) -> dict[str, Any]:
    """The DeepSpeed config of the chosen configuration."""
    c, cfg = plan.chosen, plan.cfg
    assert c is not None
    zero: dict[str, Any] = {"stage": c.zero, "contiguous_gradients": True,
                            **c.comm.zero_config(c.zero)}
    if c.zero == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    if c.offload != "none":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": plan.on_gpu}
    if c.offload == "optimizer+params":
        zero["offload_param"] = {"device": "cpu", "pin_memory": plan.on_gpu}
    ds: dict[str, Any] = {
        "train_batch_size": cfg.global_batch,
        "train_micro_batch_size_per_gpu": c.micro_batch,
        "gradient_accumulation_steps": c.grad_accum,
        "gradient_clipping": 1.0,
        "steps_per_print": 10**9,
        "zero_optimization": zero,
        "optimizer": {"type": "AdamW", "params": {
            "lr": cfg.lr, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": cfg.weight_decay,
            # Without a GPU, torch's AdamW: DeepSpeed's fused and CPU Adam compile C++ first.
            "torch_adam": not plan.on_gpu}},
        # no "scheduler": the trainer passes its own (train.config.lr_factor), so no step
        # trains at lr 0 as DeepSpeed's WarmupDecayLR makes the first ones do
    }
    if c.offload != "none" and not plan.on_gpu:
        ds["zero_force_ds_cpu_optimizer"] = False
    if plan.precision == "bf16":
        ds["bf16"] = {"enabled": True}
    elif plan.precision == "fp16":
        ds["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    return ds


def write_plan(plan: TrainPlan, spec: JobSpec, out: Path) -> tuple[Path, Path]:
    """Write ds_config.json and train.json (the resolved training config) into ``out``."""
    c = plan.chosen
    assert c is not None
    out.mkdir(parents=True, exist_ok=True)
    ds_path, train_path = out / "ds_config.json", out / "train.json"
    ds_path.write_text(json.dumps(deepspeed_config(plan), indent=2) + "\n")
    resolved = {**plan.cfg.to_json(), "precision": plan.precision, "zero": c.zero,
                "offload": c.offload, "micro_batch": c.micro_batch,
                "ranks_per_node": plan.ranks_per_node}
    train_path.write_text(json.dumps({
        "job": spec.name, "cluster": spec.cluster, "resource": spec.resource,
        "nodes": c.nodes, "train": resolved,
        "estimate_gb_per_rank": round(c.need / GB, 3),
        "peak_phase": c.phase}, indent=2) + "\n")
    return ds_path, train_path
