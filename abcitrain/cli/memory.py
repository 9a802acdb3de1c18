"""``abcitrain memory``: per-GPU training memory for ZeRO stages 0-3, and whether it fits."""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import InputError, Problem
from ..util.tables import table_lines
from ..util.words import plural


@click.command()
@click.argument("model")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="bf16",
              show_default=True, help="fp32, or 16-bit weights with an fp32 master copy.")
@click.option("--optimizer", type=click.Choice(["adamw", "adam", "sgd", "sgd-momentum"]),
              default="adamw", show_default=True,
              help="The optimizer, which sets the states per parameter (Adam: two).")
@click.option("--zero", "stages", multiple=True, type=click.IntRange(0, 3),
              help="A ZeRO stage to show; repeat for several (default: 0 to 3).")
@click.option("--offload", type=click.Choice(["none", "optimizer", "optimizer+params"]),
              default="none", show_default=True, help="What ZeRO moves to CPU memory.")
@click.option("--gpus-per-node", type=click.IntRange(min=1), help="GPUs per node.")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Nodes the model states are partitioned over (ZeRO).")
@click.option("--cluster", help="Take GPUs per node and GPU memory from this cluster...")
@click.option("--type", "resource", help="...and this resource type.")
@click.option("--seq-len", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Tokens per sequence (activations grow with it).")
@click.option("--micro-batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Sequences per GPU per forward pass.")
@click.option("--no-checkpointing", is_flag=True, help="Keep every layer's activations.")
@click.option("--no-flash-attention", is_flag=True, help="Store the attention scores.")
@click.option("--buffer-gb", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Allowance per GPU for the CUDA context, NCCL and fragmentation.")
@click.option("--margin", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
              help="Share of GPU memory kept free when judging a fit.")
@click.option("--torch-adam", is_flag=True,
              help="Peak with torch's AdamW (the kit's choice without a GPU), not DeepSpeed's "
                   "fused or CPU Adam.")
@click.option("--exact", is_flag=True,
              help="Use a preset's architecture parameter count, not its named size.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def memory(model: str, precision: str, optimizer: str, stages: tuple[int, ...], offload: str,
           gpus_per_node: int | None, nodes: int, cluster: str | None, resource: str | None,
           seq_len: int, micro_batch: int, no_checkpointing: bool, no_flash_attention: bool,
           buffer_gb: float, margin: float, torch_adam: bool, exact: bool,
           as_json: bool) -> None:
    """Per-GPU memory to train MODEL (a preset such as llama2-7b, a config.json, or a
    parameter count such as 7e9) for each ZeRO stage, beside DeepSpeed's own estimate."""
    from ..memory.peak import step_peak
    from ..memory.shapes import resolve
    from ..memory.states import GB, TrainingSetup, deepspeed_estimate, estimate
    from ..train.planner import communication

    shape = resolve(model, exact=exact)
    gpu_gb = None
    host_gb = None     # the node's CPU memory, for what offload puts there
    if cluster or resource:
        if not (cluster and resource):
            raise InputError("which GPU?", [Problem(
                "type" if cluster else "cluster",
                "give --type with --cluster" if cluster else "give --cluster with --type")])
        from ..profiles import load_profile

        profile = load_profile(cluster)
        if resource not in profile.resource_types:
            known = ", ".join(profile.resource_types)
            raise InputError("unknown type", [Problem("type", f"{resource!r} is not a type of "
                                                      f"{cluster}: {known}")])
        rtype = profile.resource_types[resource]
        if not rtype.gpus or not rtype.gpu_memory_gb:
            raise InputError("no GPU memory known", [Problem("type", f"{resource} on {cluster} "
                                                             "declares no GPUs or GPU memory")])
        gpus_per_node = gpus_per_node or rtype.gpus
        gpu_gb = rtype.gpu_memory_gb
        host_gb = rtype.memory_gb or None
    rows: list[dict[str, Any]] = []
    for stage in stages or (0, 1, 2, 3):
        if (offload != "none" and stage == 0) or (offload == "optimizer+params" and stage != 3):
            continue
        setup = TrainingSetup(precision=precision, optimizer=optimizer, zero_stage=stage,
                              offload=offload, gpus_per_node=gpus_per_node or 1, nodes=nodes,
                              seq_len=seq_len, micro_batch=micro_batch,
                              checkpointing=not no_checkpointing,
                              flash_attention=not no_flash_attention,
                              buffer_bytes=int(buffer_gb * GB))
        est = estimate(shape, setup)
        ds = deepspeed_estimate(shape, setup)
        # the communication settings `abcitrain plan` would write (overlap_comm on GPUs)
        peak = step_peak(shape, setup, communication(shape, on_gpu=not torch_adam),
                         torch_adam=torch_adam)
        busiest = peak.peak_phase
        row = {"zero_stage": stage, "weights_gb": est.weights / GB,
               "gradients_gb": est.gradients / GB, "optimizer_gb": est.optimizer / GB,
               "model_states_gb": est.model_states / GB,
               "activations_gb": None if est.activations is None else est.activations / GB,
               "buffers_gb": est.buffers / GB, "total_gb": est.total / GB,
               "cpu_per_node_gb": est.cpu_per_node / GB,
               "peak_gb": peak.device_peak / GB, "peak_phase": busiest.name,
               "host_peak_per_node_gb": peak.host_peak * (gpus_per_node or 1) / GB,
               "phases": peak.phases_json(GB),
               "deepspeed_model_states_gb": None if ds is None else ds[0] / GB,
               "deepspeed_cpu_per_node_gb": None if ds is None else ds[1] / GB,
               "notes": list(est.notes)}
        if gpu_gb is not None:
            row["fits_gpu"] = peak.device_peak <= gpu_gb * GB * (1 - margin)
            row["fits_host"] = (host_gb is None or peak.host_peak * (gpus_per_node or 1)
                                <= host_gb * GB * (1 - margin))
            row["fits"] = row["fits_gpu"] and row["fits_host"]
        rows.append(row)
    head = (f"{shape.name}: {shape.params:,} parameters ({shape.params_source}), {precision}, "
            f"{optimizer}, {(gpus_per_node or 1) * nodes} GPUs ({plural(nodes, 'node')} x "
            f"{gpus_per_node or 1}), offload {offload}")
    if as_json:
        click.echo(json.dumps({"model": shape.name, "params": shape.params,
                               "params_source": shape.params_source, "gpu_memory_gb": gpu_gb,
                               "host_memory_gb": host_gb,
                               "margin": margin, "stages": rows}, indent=1))
        return
    click.echo(head)
    counted = shape.architecture_params()
    if shape.params_source == "named size" and counted:
        click.echo(f"  (the architecture has {counted:,}: --exact estimates for that)")
    click.echo(f"  activations: seq {seq_len}, micro-batch {micro_batch}, checkpointing "
               f"{'off' if no_checkpointing else 'on'}, flash attention "
               f"{'off' if no_flash_attention else 'on'}; buffers {buffer_gb:g} GB")
    table = [("ZeRO", "weights", "grads", "optim", "states", "activ", "buffers", "paper",
              "PEAK/GPU", "at", "CPU/node", "DeepSpeed states") + (("fits",) if gpu_gb else ())]
    for r in rows:
        act = "?" if r["activations_gb"] is None else f"{r['activations_gb']:.2f}"
        fits: tuple[str, ...] = ()
        if gpu_gb is not None:
            fits = ((f"yes ({gpu_gb:g} GB)" if r["fits"] else f"NO ({gpu_gb:g} GB)"
                     if not r["fits_gpu"] else f"NO (CPU {host_gb:g} GB)"),)
        table.append((str(r["zero_stage"]), f"{r['weights_gb']:.2f}", f"{r['gradients_gb']:.2f}",
                      f"{r['optimizer_gb']:.2f}", f"{r['model_states_gb']:.2f}", act,
                      f"{r['buffers_gb']:.2f}", f"{r['total_gb']:.2f}",
                      f"{r['peak_gb']:.2f}", r["peak_phase"],
                      f"{r['host_peak_per_node_gb']:.2f}",
                      # DeepSpeed's estimators start at stage 1 (its stage 1 and 2 share one)
                      f"{r['deepspeed_model_states_gb']:.2f}"
                      if r["deepspeed_model_states_gb"] is not None else "-",
                      *fits))
    for line in table_lines(table, right=True):
        click.echo("  " + line)
    click.echo("  paper = the ZeRO paper's states + activations + buffers; PEAK = what a GPU "
               "holds at its busiest (forward, backward or optimizer step: "
               "`abcitrain.memory.peak`), which is "
               "what must fit. CPU/node = the host memory offload takes at its peak.")
    click.echo("  GB = 10^9 bytes. DeepSpeed's estimator counts model states only, 16-bit "
               "training, 2P + 18P/N bytes at stages 1-2, zero.Init at stage 3 (see "
               "`abcitrain.memory.states`).")
    if shape.params_source == "given" and not shape.has_shape:
        click.echo("  activations unknown for a bare parameter count: give a preset or a "
                   "config.json")
