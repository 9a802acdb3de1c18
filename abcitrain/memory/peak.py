"""The PEAK memory of a DeepSpeed training step, per rank, and the phase that reaches it.

``memory.states.estimate`` counts what a rank holds between steps (the ZeRO paper's model
states, or what a DeepSpeed engine keeps, ``engine=True``). A step needs more, at different
moments. This module adds, phase by phase, what DeepSpeed 0.19 (``deepspeed>=0.19``, the
kit's pin) allocates on top; every term names the code that allocates it, and
tests/test_peak_memory.py measures the sum on a real engine (2 ranks on CPU, every
allocation counted) for every configuration the planner offers: ZeRO 0-3 x fp32/bf16/fp16 x
offload none/optimizer (and optimizer+params with ZeRO-3), within 5% of the estimate.

Per rank, P parameters, N data-parallel ranks, w bytes per weight (4 fp32, 2 bf16/fp16),
L the largest single tensor (an embedding or an MLP projection):

Held throughout (the engine's states):
- 16-bit/fp32 weights: w*P, or w*P/N under ZeRO-3 (its partitions), which also keeps a
  16-bit gradient partition buffer, w*P/N (``stage3._setup_for_real_optimizer``);
- the fp32 master copy: 4P with 16-bit training and no ZeRO (``FP16_Optimizer`` /
  ``FP16_UnfusedOptimizer``), 4P/N with ZeRO 1-3 (in fp32 training too: the partition is
  cloned, ``stage_1_and_2.__init__``); none for fp32 without ZeRO;
- the optimizer's states (Adam: 8 bytes per parameter), over N from ZeRO-1 up;
- offload (ZeRO 1-3) moves the master copy and the optimizer states to host memory (and,
  ``optimizer+params`` under ZeRO-3, the 16-bit partitions; on CPU, where host and device
  are one, the measurement sees only the sum), with a
  persistent fp32 gradient partition (4P/N, ``initialize_optimizer_states``); ZeRO 1-2 add
  a 16-bit parameter partition buffer (w*P/N) and one gradient buffer of the largest tensor
  on each side (w*L, ``temp_grad_buffer_for_cpu_offload`` / ``..._gpu_offload``).

Forward: the states, the activations (``memory.states.activation_bytes``: the checkpointed
inputs and the loss, whose fp32 logits and log-softmax are counted there), and under ZeRO-3
the gathered parameters: DeepSpeed releases a gathered parameter only when its next use is
more than ``stage3_max_reuse_distance`` elements away (``partitioned_param_coordinator.
__params_to_release``); with activation checkpointing every parameter is used again in the
backward pass, so up to that many elements (plus a prefetch bucket) stay gathered, w bytes
each, and when that cap is below the model one layer gathered on its own can come on top.
Each coalesced all-gather receives into one flat buffer and copies the parameters out of it
(``AllGatherCoalescedHandle.wait``): one prefetch bucket's flat buffer more, while it is
copied. Measured on CPU: the whole model stays gathered when it is smaller than the cap.

Backward: the activations are freed as the gradients appear, so the phase counts the
larger of two moments: its start, when every activation is still held and the first
gradient, the output layer's (w*L at worst), appears beside them; and its end, when the
activations are gone and these gradient terms are held:
- ZeRO-0: the full gradients (w*P) and the flat buffer that all-reduces them, up to
  DeepSpeed's fixed 5e8 elements (``engine.allreduce_gradients``, ``MEMORY_OPT_ALLREDUCE_SIZE``);
- ZeRO-1: the full gradients (reduced only at the end of the pass), the averaged partition
  (w*P/N, ``copy_grads_in_partition``) and the reduce bucket (``reduce_bucket_size``);
- ZeRO-2: the averaged partition, the reduce bucket and one gradient not yet reduced (w*L at
  worst: gradients are reduced as they come and freed then);
- offload (ZeRO 1-2): no averaged partition (gradients go to the host's buffer), but a
  gradient larger than the bucket is cloned for its reduction (the clone replaces it: w*L
  more only while both exist) and its part in this rank's partition is copied to fp64 for
  its norm (8 bytes each, freed after it): max(w, 8) x L, measured on CPU to the byte;
- ZeRO-3: the gathered parameters, the reduce bucket and one gradient not yet reduced;
- with ``overlap_comm`` DeepSpeed keeps double reduce buffers and overlaps the all-gather:
  4.5 x (reduce + all-gather bucket) x w, the rule the transformers DeepSpeed guide gives
  (5e8-element buckets: 9 GB in fp32, 4.5 GB in 16 bits). Not measurable on CPU.

Optimizer step (ZeRO-3: the gathered parameters are released by then; an earlier version
counted the largest layer still gathered, which a measurement that missed frees made on
gloo's threads had suggested):
- the fp32 gradients the optimizer reads: 16-bit gradients are copied to fp32 (4P without
  ZeRO, ``unfused_optimizer.step``; 4P/N with ZeRO 1-3, ``stage_1_and_2.step`` /
  ``stage3._prepare_fp32_grad_for_sub_group``), and ZeRO-0 still holds the 16-bit ones;
  under offload the host's persistent buffer serves;
- torch's AdamW (``torch_adam: true``, what the kit uses without a GPU) steps one tensor at
  a time and allocates two temporaries of it (``sqrt`` and the division): 2 x 4 x the
  largest tensor it steps: L without ZeRO, the flat partition P/N with ZeRO (at most
  ``sub_group_size`` under ZeRO-3). DeepSpeed's fused Adam (GPU) and CPU Adam (offload)
  allocate none.

Fixed allowances, stated not derived: the CUDA context, NCCL and allocator fragmentation
(``buffer_bytes``, 2 GB per GPU by default, tunable).
"""

from __future__ import annotations

from dataclasses import dataclass

from .shapes import ModelShape
from .states import OPTIMIZERS, TrainingSetup, activation_bytes, state_bytes

#: DeepSpeed's ZeRO-0 all-reduce buffer, in elements (engine.allreduce_gradients' default;
#: not a config key).
ALLREDUCE_ELEMENTS = 500_000_000
#: DeepSpeed's defaults for the keys the planner writes (runtime/zero/config.py).
DEFAULT_BUCKET = 500_000_000
DEFAULT_PREFETCH = 50_000_000
DEFAULT_MAX_LIVE = 1_000_000_000
DEFAULT_MAX_REUSE = 1_000_000_000
DEFAULT_PERSISTENCE = 100_000
DEFAULT_SUB_GROUP = 1_000_000_000
PHASES = ("forward", "backward", "optimizer step")


@dataclass(frozen=True)
class Comm:
    """The communication settings DeepSpeed reads from ds_config.json (elements), the very
    values the planner writes there."""

    reduce_bucket: int = DEFAULT_BUCKET
    allgather_bucket: int = DEFAULT_BUCKET
    overlap_comm: bool = False
    prefetch_bucket: int = DEFAULT_PREFETCH
    max_live_parameters: int = DEFAULT_MAX_LIVE
    max_reuse_distance: int = DEFAULT_MAX_REUSE
    persistence_threshold: int = DEFAULT_PERSISTENCE
    sub_group_size: int = DEFAULT_SUB_GROUP

    def zero_config(self, stage: int) -> dict[str, int | bool]:
        """These settings as ds_config.json's ``zero_optimization`` keys for ``stage``."""
        keys: dict[str, int | bool] = {"overlap_comm": self.overlap_comm,
                                       "reduce_bucket_size": self.reduce_bucket,
                                       "allgather_bucket_size": self.allgather_bucket}
        if stage == 3:
            keys.update(stage3_prefetch_bucket_size=self.prefetch_bucket,
                        stage3_max_live_parameters=self.max_live_parameters,
                        stage3_max_reuse_distance=self.max_reuse_distance,
                        stage3_param_persistence_threshold=self.persistence_threshold,
                        sub_group_size=self.sub_group_size)
        return keys


@dataclass(frozen=True)
class Phase:
    """One phase's bytes on the rank's device and on the host, term by term."""

    name: str
    device: tuple[tuple[str, int], ...]
    host: tuple[tuple[str, int], ...] = ()

    @property
    def device_bytes(self) -> int:
        """Bytes on the rank's GPU (or, without one, in its share of host memory)."""
        return sum(b for _, b in self.device)

    @property
    def host_bytes(self) -> int:
        """Bytes this rank keeps in host memory (what offload moves there)."""
        return sum(b for _, b in self.host)


@dataclass(frozen=True)
class StepPeak:
    """The three phases of a training step and which one peaks."""

    phases: tuple[Phase, ...]
    #: The fixed allowance (CUDA context, NCCL, fragmentation), counted in every phase.
    buffers: int

    @property
    def peak_phase(self) -> Phase:
        """The phase with the most bytes on the device (the first of equals)."""
        return self.busiest(whole_rank=False)

    def busiest(self, whole_rank: bool) -> Phase:
        """The phase with the most bytes: on the device, or (``whole_rank``) on the device
        and the host together, as when the device is the host."""
        if whole_rank:
            return max(self.phases, key=lambda p: p.device_bytes + p.host_bytes)
        return max(self.phases, key=lambda p: p.device_bytes)

    @property
    def device_peak(self) -> int:
        """The most bytes the device holds at any moment of the step, buffers included."""
        return self.peak_phase.device_bytes + self.buffers

    @property
    def host_peak(self) -> int:
        """The most host bytes per rank at any moment of the step."""
        return max(p.host_bytes for p in self.phases)

    def phases_json(self, unit: int) -> dict[str, dict[str, object]]:
        """Each phase's device and host bytes and its device terms, in ``unit`` (GB: 10^9),
        as `memory --json` and `plan --json` print them."""
        return {p.name: {"device_gb": p.device_bytes / unit, "host_gb": p.host_bytes / unit,
                         "terms": {k: v / unit for k, v in p.device}}
                for p in self.phases}

    @property
    def total_peak(self) -> int:
        """Device and host bytes of the rank at its busiest phase (what one process holds
        when the device IS the host, as on CPU)."""
        return max(p.device_bytes + p.host_bytes for p in self.phases) + self.buffers


def step_peak(model: ModelShape, setup: TrainingSetup, comm: Comm | None = None,
              torch_adam: bool = False) -> StepPeak:
    """The per-rank peak of one training step of ``model`` under ``setup`` with the
    communication settings ``comm``; ``torch_adam``: torch's AdamW steps the parameters
    (the kit's choice without a GPU) instead of DeepSpeed's fused or CPU Adam."""
    comm = comm or Comm()
    stage, n, psi = setup.zero_stage, setup.world, model.params
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage {stage}; choose 0, 1, 2 or 3")
    if setup.offload != "none" and stage == 0:
        raise ValueError("offload needs ZeRO stage 1, 2 or 3")
    w, _, _ = state_bytes(setup.precision, setup.optimizer)
    sixteen = setup.precision != "fp32"
    largest = model.largest_layer_params()
    offload = setup.offload != "none"
    part = _share(psi, n)

    held: list[tuple[str, int]] = []
    host: list[tuple[str, int]] = []
    # ZeRO-3 with offload_param keeps the 16-bit partitions in host memory too
    (host if setup.offload == "optimizer+params" else held).append(
        ("weights", w * psi if stage < 3 else w * part))
    states = 4 * OPTIMIZERS[setup.optimizer]
    master = 4 * psi if stage == 0 and sixteen else 4 * part if stage else 0
    optim = states * psi if stage == 0 else states * part
    (host if offload else held).extend([("fp32 master copy", master),
                                        ("optimizer states", optim)])
    if stage == 3:
        held.append(("gradient partition (ZeRO-3)", w * part))
    if offload:
        host.append(("fp32 gradient partition", 4 * part))
        if stage < 3:
            host += [("16-bit parameter buffer", w * part), ("gradient buffer", w * largest)]
            held.append(("gradient buffer", w * largest))
    held = [t for t in held if t[1]]
    host = [t for t in host if t[1]]

    act = activation_bytes(model, setup) or 0
    gathered = 0
    if stage == 3:
        gathered = w * min(psi, comm.max_reuse_distance + comm.prefetch_bucket)
    overlap = int(4.5 * (comm.reduce_bucket + comm.allgather_bucket) * w) \
        if comm.overlap_comm and stage else 0

    gathering: list[tuple[str, int]] = []
    if gathered:
        gathering += [("gathered parameters (ZeRO-3)", gathered),
                      ("all-gather flat buffer (ZeRO-3)",
                       w * min(psi, comm.prefetch_bucket))]
        if gathered < w * psi:
            gathering.append(("largest layer, gathered alone", w * largest))
    forward = [*held, ("activations", act), *gathering]

    grads: list[tuple[str, int]] = []
    if stage == 0:
        grads += [("gradients", w * psi),
                  ("all-reduce buffer", w * min(psi, ALLREDUCE_ELEMENTS + largest))]
    else:
        if stage == 1:
            grads.append(("gradients", w * psi))
        if stage in (1, 2) and not offload:
            grads.append(("averaged gradient partition", w * part))
        if stage in (1, 2) and offload:
            # a gradient cloned for its reduction (reduce_independent_p_g_buckets_and_
            # remove_grads; the clone then replaces it) or copied to fp64 for its norm
            # (set_norm_for_param_grad_in_gpu, zero.utils.get_norm_dtype): never both
            # beside the original, the largest one at worst
            grads.append(("gradient copy for the host", max(w, 8) * largest))
        if stage == 3 or (stage == 2 and not offload):
            # each gradient is whole until its bucket is reduced (``reduce_ready_partitions_
            # and_remove_grads`` frees it then): the largest one at worst
            grads.append(("a gradient before its reduction", w * largest))
        grads.append(("reduce bucket", w * min(psi, comm.reduce_bucket)))
        if overlap:
            grads.append(("overlap_comm buffers", overlap))
    backward = [*held, *gathering]
    start = [("activations", act), ("first gradient (output layer)", w * largest)]
    backward += grads if sum(b for _, b in grads) >= sum(b for _, b in start) else start

    step = list(held)
    step_host = list(host)
    if stage == 0:
        step.append(("gradients", w * psi))
        if sixteen:
            step.append(("fp32 gradient copies", 4 * psi))
    elif not offload:
        step.append(("fp32 gradient partition", 4 * part))
    if torch_adam:
        stepped = largest if stage == 0 else min(part, comm.sub_group_size) if stage == 3 \
            else part
        (step_host if offload else step).append(("torch AdamW temporaries", 2 * 4 * stepped))
    phases = (Phase("forward", _nonzero(forward), tuple(host)),
              Phase("backward", _nonzero(backward), tuple(host)),
              Phase("optimizer step", _nonzero(step), tuple(step_host)))
    return StepPeak(phases, setup.buffer_bytes)


def _nonzero(terms: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple(t for t in terms if t[1])


def _share(total: int, parts: int) -> int:
    return -(-total // parts)
