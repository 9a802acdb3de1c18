"""Per-GPU training memory under DeepSpeed ZeRO: model states, activations and buffers.

Model states per parameter (the ZeRO paper, Rajbhandari et al. 2020):

- fp32: 4 bytes weights + 4 gradients + optimizer states (Adam: 8, momentum and variance);
- mixed precision (bf16/fp16): 2 + 2 + 12 (an fp32 master copy and Adam's two states).

ZeRO partitions them over the N data-parallel GPUs: stage 1 the optimizer states, stage 2
also the gradients, stage 3 also the weights. Llama-2 7B (7e9) in fp32 with Adam: 16 x 7 =
112 GB per GPU without ZeRO, 4 + 4 + 8/8 = 9 x 7 = 63 GB with stage 1 on 8 GPUs, and
4 + 12/8 = 5.5 x 7 = 38.5 GB with stage 2 (1 GB = 10^9 bytes).

Offload moves the optimizer's share (with the fp32 master copy) to CPU memory (stages 1-3),
and with stage 3 the weights too; the GPU then keeps the gathered working set. The optimizer
steps on the CPU, so the gradients are reduced into CPU memory as well (ZeRO-Offload: in
their own precision; a DeepSpeed engine: in fp32 for its CPU Adam); the GPU keeps only the
bucket being reduced, which the buffers allowance covers.

Activations (Korthikanti et al. 2022, a GPT-style layer in 16-bit): s*b*h*(34 + 5*a*s/h)
bytes per layer, the 5as/h term being the attention scores that flash attention does not
store; with activation checkpointing each layer keeps only its 16-bit input (2*s*b*h) and one
layer is recomputed at a time. The loss adds the logits in the model's precision, transformers'
fp32 copy of them and cross-entropy's fp32 log-softmax: 10*s*b*vocab bytes in 16-bit
training, 8*s*b*vocab in fp32; with a 128k vocabulary they are larger than a layer.
Buffers (CUDA context, NCCL, allocator fragmentation) are a stated allowance, 2 GB by
default, not a derivation. What a step needs at its peak is ``memory.peak``'s.

DeepSpeed's own estimators (``estimate_zero2_model_states_mem_needs``, ``..._zero3_...``,
deepspeed>=0.19) differ on purpose: they assume 16-bit training and count 2P + 18P/N bytes
for stages 1-2 ("2 = params_16bit, 18 = 2 grads_16bit + 4 grads_32bit + 4 params_32bit + 8
optimizer states": the 16-bit weights whole, everything else partitioned, fp32 gradients
included) where the ZeRO paper counts 2P + 14P/N at stage 2; stage 3 adds the largest
layer's 16-bit weights and gradients (4 bytes per parameter of it) on every GPU; they leave
activations and buffers out; and their CPU figures carry a 1.5x buffer factor (stage 3 with
``zero_init``, as the kit builds its models). ``deepspeed_estimate`` below restates them so
the two can be shown side by side without importing deepspeed; a test checks them digit for
digit against the installed functions.

What a DeepSpeed engine really holds (``engine=True``, measured on 2 ranks, stages 0-3, fp32
and bf16; tests/test_engine_bytes.py checks it within 1%) differs from the paper's figures
in two ways, both from ZeRO-1 up: the gradients are reduced into each rank's partition at
the end of a step, so stage 1 holds only its share of them too (the full gradient exists
only bucket by bucket during the backward pass: the buffers allowance); and the optimizer
keeps an fp32 copy of its partition of the weights even in fp32 training (4 more bytes per
parameter, divided by N). ``abcitrain plan`` uses this form; ``abcitrain memory`` shows the
paper's, whose headline figures the issue pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .shapes import ModelShape

GB = 10**9
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = {"adam": 2, "adamw": 2, "sgd": 0, "sgd-momentum": 1}   # fp32 states per param
OFFLOADS = ("none", "optimizer", "optimizer+params")


@dataclass(frozen=True)
class TrainingSetup:
    """How a model is trained: precision, optimizer, ZeRO stage, offload, parallelism and
    the activation-related settings."""

    precision: str = "bf16"
    optimizer: str = "adamw"
    zero_stage: int = 0
    offload: str = "none"
    gpus_per_node: int = 1
    nodes: int = 1
    seq_len: int = 2048
    micro_batch: int = 1
    checkpointing: bool = True
    flash_attention: bool = True
    buffer_bytes: int = 2 * GB
    #: True: what a DeepSpeed engine holds (see the module docstring); False: the paper's.
    engine: bool = False

    @property
    def world(self) -> int:
        """Data-parallel GPUs (every GPU holds one replica's share)."""
        return self.gpus_per_node * self.nodes


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU by kind, and per node of CPU memory for what is offloaded."""

    weights: int
    gradients: int
    optimizer: int
    activations: int | None
    buffers: int
    cpu_per_node: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Part of ``weights``: the largest layer gathered whole under ZeRO-3.
    gathered: int = 0

    @property
    def model_states(self) -> int:
        """Weights, gradients and optimizer states per GPU."""
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> int:
        """Everything per GPU (activations counted as 0 when the shape is unknown)."""
        return self.model_states + (self.activations or 0) + self.buffers


def state_bytes(precision: str, optimizer: str) -> tuple[int, int, int]:
    """Bytes per parameter of weights, gradients and optimizer states."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    states = 4 * OPTIMIZERS[optimizer]
    if precision == "fp32":
        return 4, 4, states
    return 2, 2, 4 + states              # the fp32 master copy lives with the optimizer


def estimate(model: ModelShape, setup: TrainingSetup) -> MemoryEstimate:
    """Per-GPU memory of training ``model`` with ``setup``."""
    if setup.zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage {setup.zero_stage}; choose 0, 1, 2 or 3")
    if setup.offload not in OFFLOADS:
        raise ValueError(f"offload {setup.offload!r}; choose one of {', '.join(OFFLOADS)}")
    if setup.offload != "none" and setup.zero_stage == 0:
        raise ValueError("offload needs ZeRO stage 1, 2 or 3")
    if setup.offload == "optimizer+params" and setup.zero_stage != 3:
        raise ValueError("offloading the weights needs ZeRO stage 3")
    psi, n = model.params, setup.world
    w_b, g_b, o_b = state_bytes(setup.precision, setup.optimizer)
    weights = w_b * psi
    grads = g_b * psi
    if setup.engine and setup.zero_stage >= 1 and setup.precision == "fp32":
        o_b += 4                       # DeepSpeed's fp32 copy of the partition
    opt = o_b * psi
    if setup.zero_stage >= 1:
        opt = _share(opt, n)
    if setup.zero_stage >= 2 or (setup.engine and setup.zero_stage == 1):
        grads = _share(grads, n)
    if setup.zero_stage >= 3:
        weights = _share(weights, n)
    notes = []
    cpu = 0
    gathered = 0
    if setup.offload != "none":
        grad_b = 4 if setup.engine else g_b
        cpu += (opt + _share(grad_b * psi, n)) * setup.gpus_per_node
        notes.append(f"optimizer states ({o_b} bytes/param) and gradients ({grad_b} "
                     "bytes/param) held in CPU memory")
        opt = grads = 0
    if setup.offload == "optimizer+params":
        cpu += weights * setup.gpus_per_node
        # the gathered working set stays: the largest module, in the weights' precision
        weights = gathered = w_b * model.largest_layer_params()
        notes.append("weights held in CPU memory; the GPU keeps the largest gathered layer")
    elif setup.zero_stage == 3:
        gathered = w_b * model.largest_layer_params()
        weights += gathered
        notes.append("stage 3 also gathers the largest layer whole on every GPU")
    return MemoryEstimate(weights=weights, gradients=grads, optimizer=opt,
                          activations=activation_bytes(model, setup),
                          buffers=setup.buffer_bytes, cpu_per_node=cpu, notes=tuple(notes),
                          gathered=gathered)


def _share(total: int, parts: int) -> int:
    return -(-total // parts)        # ceiling: a partition is never smaller than its share


def activation_bytes(model: ModelShape, setup: TrainingSetup) -> int | None:
    """Activations per GPU for one micro-batch; None when the model's shape is unknown."""
    if not model.has_shape:
        return None
    s, b, h, a = setup.seq_len, setup.micro_batch, model.hidden, model.heads
    scale = 2 if setup.precision == "fp32" else 1          # the formula is for 16-bit values
    per_layer = s * b * h * 34 + (0 if setup.flash_attention else 5 * a * s * s * b)
    per_layer *= scale
    if setup.checkpointing:
        kept = model.layers * 2 * s * b * h * scale + per_layer
    else:
        kept = model.layers * per_layer
    # The loss (transformers' ForCausalLMLoss): the logits in the model's precision, an fp32
    # copy of them (``logits.float()``, no copy in fp32) and cross-entropy's fp32
    # log-softmax, all alive when the loss is computed.
    logits = (8 if setup.precision == "fp32" else 10) * s * b * model.vocab
    return kept + logits


def deepspeed_estimate(model: ModelShape, setup: TrainingSetup,
                       zero_init: bool = True) -> tuple[int, int] | None:
    """(GPU bytes per GPU, CPU bytes per node) by DeepSpeed's own estimator functions as
    deepspeed>=0.19 writes them (``estimate_zero2_model_states_mem_needs``, used for stages
    1-2, and ``estimate_zero3_model_states_mem_needs``): model states only, 16-bit training
    assumed, a 1.5x CPU buffer factor. ``zero_init``: the model is built under
    ``deepspeed.zero.Init``, as the kit does for stage 3. None for stage 0 (DeepSpeed has no
    estimator for it)."""
    if setup.zero_stage == 0:
        return None
    psi, per_node, nodes = model.params, setup.gpus_per_node, setup.nodes
    total_gpus = nodes * per_node
    factor = 1.5
    if setup.zero_stage == 3:
        gpus_factor = 1 / nodes
        largest = 4 * model.largest_layer_params()
        if setup.offload == "optimizer+params":
            cpu = psi * (18 * gpus_factor if zero_init
                         else max(4 * per_node, 18 * gpus_factor)) * factor
            return largest, int(cpu)
        if setup.offload == "optimizer":
            cpu = psi * (16 * gpus_factor if zero_init
                         else max(4 * per_node, 16 * gpus_factor)) * factor
            return largest + int(2 * psi / total_gpus), int(cpu)
        cpu = (model.largest_layer_params() if zero_init else psi) * 4 * per_node * factor
        return largest + int(18 * psi / total_gpus), int(cpu)
    if setup.offload != "none":
        return 2 * psi, int(psi * max(4 * total_gpus, 16) * factor)
    # 2 = 16-bit params; 18 = 2 16-bit grads + 4 fp32 grads + 4 fp32 params + 8 Adam states
    return 2 * psi + int(18 * psi / total_gpus), int(psi * 4 * per_node * factor)
