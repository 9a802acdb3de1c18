"""``abcitrain plan`` and ``abcitrain launch``: plan a training job, start its ranks.

Registered without importing the planner or the launcher, which load only when run (and
neither imports torch: the ranks do, in their own processes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import InputError, Problem
from ..util.tables import table_lines
from ..util.words import plural
from .output import error_json


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="List every configuration tried.")
@click.option("--dry-run", is_flag=True, help="Do not write the DeepSpeed config.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plan(spec: Path, show_all: bool, dry_run: bool, as_json: bool) -> None:
    """Plan SPEC's training: the cheapest ZeRO stage, offload, nodes and batch split that
    fit the GPU memory; write the DeepSpeed config the job will use."""
    from ..batch.spec import load_spec
    from ..memory.states import GB
    from ..train.config import parse_train
    from ..train.planner import plan_training, write_plan
    from ..train.prepare import why_nothing_fits

    job, profile = load_spec(spec)
    if job.train is None:
        raise InputError(f"{spec} is not a training job", [Problem(
            "train", "add a train: section (model, data, seq_len, global_batch, steps)")])
    cfg = parse_train(job.train)
    tp = plan_training(job, profile, cfg, auto_nodes=job.nodes == 0)
    c = tp.chosen
    rtype = profile.resource_types[job.resource]
    where = (f"{rtype.gpus} x {rtype.gpu_model or 'GPU'} {rtype.gpu_memory_gb:g} GB"
             if tp.on_gpu else f"no GPU, {plural(tp.ranks_per_node, 'rank')}")
    shown = list(tp.tried) if show_all else _summary(tp.tried, c)
    if as_json:
        # one document, fitting or not: when nothing fits, ok is false and errors say why
        # (what was tried stays, for the reader who wants to see how far each came)
        refusal = None if c is not None else InputError(
            f"{job.name}: no configuration fits {job.resource} on {profile.name}",
            why_nothing_fits(tp))
        click.echo(json.dumps({
            **(error_json(refusal, profile.name) if refusal is not None else {
                "ok": True, "cluster": profile.name, "title": None, "errors": [],
                "warnings": []}),
            "model": tp.shape.name, "params": tp.shape.params, "precision": tp.precision,
            "resource": job.resource, "usable_gb_per_rank": tp.budget / GB,
            "chosen": None if c is None else _row(c, GB),
            "points_per_hour": None if tp.points_per_hour is None else str(tp.points_per_hour),
            "tried": [_row(x, GB) for x in shown], "notes": list(tp.notes)}, indent=2))
        if refusal is not None:
            sys.exit(2)
    else:
        click.echo(f"{tp.shape.name}: {tp.shape.params:,} parameters, {tp.precision}, AdamW; "
                   f"{profile.name} {job.resource} ({where}); usable per rank "
                   f"{tp.budget / GB:.1f} GB ({tp.memory_per_rank / GB:.1f} GB less "
                   f"{cfg.margin:.0%} margin)")
        for note in tp.notes:
            click.echo(f"  note: {note}")
        table = [("nodes", "ZeRO", "offload", "micro", "accum", "states", "activ", "PEAK/rank",
                  "at", "headroom", "CPU/node", "fits")]
        for x in shown:
            e = x.estimate
            table.append((str(x.nodes), str(x.zero), x.offload, str(x.micro_batch),
                          str(x.grad_accum), _gb(e.model_states), _gb(e.activations or 0),
                          _gb(x.need), x.phase, _headroom(x, tp.budget),
                          _gb(x.host_bytes) if x.host_bytes and tp.on_gpu else "-",
                          ("CHOSEN" if x == c else "yes") if x.fits
                          else "no" if not x.fits_gpu else "no (CPU)"))
        for line in table_lines(table):
            click.echo(line)
    if c is None:
        raise InputError(f"{job.name}: no configuration fits {job.resource} on {profile.name}",
                         why_nothing_fits(tp))
    price = ("no prices known" if tp.points_per_hour is None
             else f"{tp.points_per_hour} points per hour")
    if not as_json:
        click.echo(f"plan: {plural(c.nodes, 'node')} x "
                   f"{plural(tp.ranks_per_node, 'rank')}, ZeRO-{c.zero}, "
                   f"offload {c.offload}, micro-batch {c.micro_batch} x {c.grad_accum} "
                   f"accumulation = global batch {cfg.global_batch}; "
                   f"peak {c.need / GB:.1f} GB per rank ({c.phase}), "
                   f"{_headroom(c, tp.budget)} of the usable left; {price}")
    if not dry_run:
        ds_path, train_path = write_plan(tp, job, Path(cfg.output_for(job.name)))
        click.echo(f"wrote {ds_path} and {train_path}", err=as_json)


def _summary(tried: Any, chosen: Any) -> list[Any]:
    """Per ZeRO stage and offload at the chosen node count (else the first and last tried):
    the largest micro-batch that fits, or the smallest one when none does."""
    if not tried:
        return []
    counts = [chosen.nodes] if chosen else sorted({tried[0].nodes, tried[-1].nodes})
    out = []
    for nodes in counts:
        groups: dict[tuple[int, str], list[Any]] = {}
        for x in tried:
            if x.nodes == nodes:
                groups.setdefault((x.zero, x.offload), []).append(x)
        for items in groups.values():
            fitting = [x for x in items if x.fits]
            out.append(max(fitting, key=lambda x: x.micro_batch) if fitting
                       else min(items, key=lambda x: x.micro_batch))
    return out


def _gb(value: int) -> str:
    gb = value / 10**9
    return "<0.01" if 0 < gb < 0.01 else f"{gb:.1f}" if gb >= 10 else f"{gb:.2f}"


def _headroom(c: Any, budget: int) -> str:
    """How close a candidate is: the share of the usable memory left at its peak."""
    return f"{c.headroom / budget:+.0%}" if budget else "-"


def _row(c: Any, gb: int) -> dict[str, Any]:
    e = c.estimate
    return {"nodes": c.nodes, "zero": c.zero, "offload": c.offload,
            "micro_batch": c.micro_batch, "grad_accum": c.grad_accum,
            "model_states_gb": e.model_states / gb, "activations_gb": (e.activations or 0) / gb,
            "between_steps_gb": e.total / gb, "peak_gb": c.need / gb, "peak_phase": c.phase,
            "headroom_gb": c.headroom / gb,
            "phases": c.peak.phases_json(gb),
            "buffers_gb": c.peak.buffers / gb,
            "host_gb_per_node": c.host_bytes / gb,
            "fits_gpu": c.fits_gpu, "fits_host": c.fits_host, "fits": c.fits}


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--nproc-per-node", type=click.IntRange(min=1),
              help="Ranks per node (default: the job's ranks or GPUs per node).")
@click.option("--launcher", type=click.Choice(["torchrun", "deepspeed", "mpirun"]),
              help="Override the cluster profile's launcher.")
@click.option("--signal", "signal_name", default="USR2", show_default=True,
              help="Signal the ranks get before the walltime ends.")
@click.option("--stop-before", type=click.IntRange(min=0), default=300, show_default=True,
              help="Seconds before the walltime ends to send it.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The trainer's state.json: says whether it stopped early.")
@click.option("--resubmit", "resubmit_spec", type=click.Path(dir_okay=False, path_type=Path),
              help="Submit this spec again when the ranks stopped early.")
@click.option("--max-jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs in all that one training run may take.")
@click.option("--dry-run", is_flag=True, help="Print the commands and hostfile; start nothing.")
@click.option("--mpirun-arg", "mpirun_args", multiple=True, metavar="ARG",
              help="One more mpirun argument (Open MPI launches), after the profile's; "
              "repeatable.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def launch(nproc_per_node: int | None, launcher: str | None, signal_name: str,
           stop_before: int, state_file: Path | None, resubmit_spec: Path | None,
           max_jobs: int, dry_run: bool, mpirun_args: tuple[str, ...],
           command: tuple[str, ...]) -> None:
    """Start COMMAND on every rank of this job (inside a job script): abcitrain launch --
    python jobs/train.py RUN/train.json."""
    from ..launch.run import LaunchOptions, parse_signal_name
    from ..launch.run import launch as run_launch

    try:
        name = parse_signal_name(signal_name)
    except ValueError as exc:
        raise InputError("bad --signal", [Problem("signal", str(exc))]) from None
    opts = LaunchOptions(command=command, ranks_per_node=nproc_per_node, kind=launcher,
                         signal_name=name, stop_before_s=stop_before, state_file=state_file,
                         resubmit_spec=resubmit_spec, max_jobs=max_jobs, dry_run=dry_run,
                         mpirun_args=mpirun_args)
    sys.exit(run_launch(opts))


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cluster", required=True, help="The cluster the team trains on.")
def init(directory: Path, cluster: str) -> None:
    """Scaffold a team's training project in DIRECTORY: CPT and SFT job specs, the kit's
    training script, sample data, a container definition and a README of next steps."""
    from ..profiles import load_profile
    from ..scaffold.init import init_project

    done = init_project(directory, load_profile(cluster))
    click.echo(f"created {directory} for {cluster} ({done.resource}): "
               f"{len(done.files)} files and folders")
    import shlex

    # quoted: a folder named $(...) must not run when the line is pasted
    where = shlex.quote(str(directory))
    from ..util.yamlio import load_yaml_file

    model = str((load_yaml_file(directory / "jobs" / "sft.yaml").get("train") or {})
                .get("model", ""))
    if model and not (directory / model / "config.json").is_file():
        # plan reads the model's config.json: until the model is there it cannot plan
        click.echo(f"next: put the base model in {shlex.quote(str(directory / model))} (see "
                   f"{model.split('/')[0]}/README.md), then: cd {where} && abcitrain plan "
                   "jobs/sft.yaml")
        click.echo(f"until then: abcitrain memory llama2-7b --cluster {shlex.quote(cluster)} "
                   f"--type {shlex.quote(done.resource)} shows what a 7B model needs there")
    else:
        click.echo(f"next: cd {where} && abcitrain plan jobs/sft.yaml  (see README.md)")
