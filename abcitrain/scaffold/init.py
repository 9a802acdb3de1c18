"""``abcitrain init DIR --cluster NAME``: scaffold a team's training project.

Writes job specs for CPT and SFT on the cluster's first GPU type (the local CPU type on the
`local` cluster, where the tiny model makes them run at once), the kit's training script,
sample data, an Apptainer definition and a README of next steps. Nothing is overwritten.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..backends import get_backend
from ..domain import ClusterProfile
from ..errors import InputError, Problem

GPU_IMAGE = "nvcr.io/nvidia/pytorch:24.10-py3"
CPU_IMAGE = "python:3.11-slim"
#: The kit's Python stack, pinned to versions that resolved and ran together here
#: (abcitrain's own dependencies too: its wheel goes in with --no-deps). NGC's image brings
#: its own CUDA torch; the CPU image gets torch's CPU build.
STACK = ("deepspeed==0.19.8", "transformers==5.24.0", "accelerate==1.15.0",
         "tokenizers==0.23.3", "safetensors==0.8.0", "mlflow-skinny==3.17.2",
         "sqlalchemy==2.1.9", "alembic==1.20.1")
ABCITRAIN_DEPS = ("click==8.5.1", "jinja2==3.1.6", "pyyaml==6.0.4", "voluptuous==0.16.0",
                  "platformdirs==4.14.9", "paramiko==5.1.0", "submitit==1.5.4",
                  "spython==0.3.14")
CPU_TORCH = "torch==2.13.0+cpu"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def kit_dir() -> Path:
    """The starter kit (train.py, sample data, tiny model): in the wheel or the checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "kit", here.parent / "jobs"):
        if (candidate / "train.py").is_file():
            return candidate
    raise FileNotFoundError(f"abcitrain's starter kit is missing (looked near {here})")


@dataclass(frozen=True)
class Scaffold:
    """What ``init`` wrote."""

    root: Path
    files: tuple[Path, ...]
    resource: str


def kit_container(project: str, gpu: bool) -> dict[str, object]:
    """The container spec of the kit's stack (GPU: NVIDIA's PyTorch image; CPU:
    python:3.11-slim with the CPU build of torch), every Python package pinned."""
    spec: dict[str, object] = {
        "name": "train", "base": f"docker://{GPU_IMAGE if gpu else CPU_IMAGE}",
        "system_packages": [] if gpu else ["libaio-dev"],
        "python_packages": ([] if gpu else [CPU_TORCH]) + list(STACK + ABCITRAIN_DEPS),
        # abcitrain itself, as a wheel: pip wheel --no-deps -w containers/wheels abcitrain
        "files": [{"from": "containers/wheels", "to": "/opt/wheels"}],
        "post": [["sh", "-c", "python3 -m pip install --no-cache-dir --no-deps "
                  "/opt/wheels/*.whl"]],
        "environment": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                        "PYTHONUNBUFFERED": "1"},
        "labels": {"Project": project},
        "test": [["python3", "-c", "import torch, deepspeed, transformers, abcitrain"]],
        "help": (f"The training stack for {project}: torch, DeepSpeed, transformers, MLflow "
                 "and abcitrain. Run a rank: singularity exec "
                 + ("--nv " if gpu else "") + "train.sif python jobs/train.py RUN/train.json"),
    }
    if not gpu:
        spec["pip_index_url"] = CPU_INDEX
    return spec


def container_definition(project: str, gpu: bool) -> str:
    """The kit's definition file, rendered from its container spec."""
    from ..container.render import render_definition
    from ..container.spec import parse_container

    return render_definition(parse_container(kit_container(project, gpu), "kit container"))


def pick_resource(profile: ClusterProfile) -> tuple[str, bool]:
    """The type the sample specs use: where jobs run on this machine the CPU type (runs here
    now), else the first whole-node GPU type, else the first GPU type, else the first type."""
    types = profile.resource_types
    if get_backend(profile.scheduler).runs_here and "cpu" in types:
        return "cpu", False
    gpu = [n for n, t in types.items() if t.gpus and t.exclusive] or \
          [n for n, t in types.items() if t.gpus]
    if gpu:
        return gpu[0], True
    return next(iter(types)), False


def _spec(name: str, mode: str, profile: ClusterProfile, resource: str, local: bool) -> str:
    train: dict[str, object] = {
        "mode": mode,
        "model": "models/tiny-llama" if local else "models/base",
        "init": "random" if local else "pretrained",
        "data": "data/cpt" if mode == "cpt" else "data/sft.jsonl",
        "seq_len": 64 if local else 2048,
        "global_batch": 8 if local else 64,
        "steps": 30 if local else 1000,
        "lr": 0.002 if local else 2.0e-5,
        "eval_every": 10 if local else 100,
        "save_every": 10 if local else 200,
        "walltime": {"signal": "USR2", "stop_before": "0:01:00" if local else "0:10:00",
                     "max_jobs": 3},
    }
    if local:
        train["ranks_per_node"] = 2
    spec: dict[str, object] = {"name": name, "cluster": profile.name, "resource": resource,
                               "walltime": "0:30:00" if local else "6:00:00",
                               "nodes": "auto"}
    if profile.group_required:
        spec["group"] = "YOUR_GROUP"
    spec["train"] = train
    head = (f"# {mode.upper()} with the abcitrain starter kit on {profile.name} "
            f"({resource}).\n# abcitrain plan jobs/{name}.yaml shows what fits; abcitrain "
            f"submit jobs/{name}.yaml runs it.\n")
    return head + yaml.safe_dump(spec, sort_keys=False)


def readme(project: str, profile: ClusterProfile, resource: str, local: bool) -> str:
    """The team's next steps."""
    steps = [f"# {project}: training on {profile.name}", "",
             f"Made by `abcitrain init` for cluster `{profile.name}` ({resource}).", "",
             "## Next steps", ""]
    if profile.group_required:
        steps.append("1. Put your group name in `jobs/*.yaml` (`group: YOUR_GROUP`).")
    if not local:
        steps.append("1. Download the model on the login node into `models/base` "
                     "(compute nodes often have no internet): `huggingface-cli download "
                     "MODEL --local-dir models/base`.")
    steps += [
        "1. Replace `data/cpt/` (raw text) and `data/sft.jsonl` (one JSON object per line "
        "with `prompt` and `response`) with your data.",
        "1. `abcitrain plan jobs/sft.yaml`: the ZeRO stage, nodes and batch split that fit, "
        "and the points per hour.",
        "1. `abcitrain submit --wait jobs/sft.yaml` (or `jobs/cpt.yaml`). A job stopped by "
        "its walltime saves a checkpoint and continues in a new job (`max_jobs`).",
        "1. Results: `runs/NAME/` (metrics.jsonl, checkpoints, `model/` in Hugging Face "
        "format, and an MLflow store `mlflow.db`).",
        "1. Containers: `containers/train.def` builds the stack with Apptainer/Singularity.",
        "", "`abcitrain points` shows what the team has spent.", ""]
    return "\n".join(steps)


def init_project(target: Path, profile: ClusterProfile) -> Scaffold:
    """Write the scaffold into ``target`` (created; existing files are never replaced)."""
    if target.exists() and any(target.iterdir()):
        raise InputError(f"{target} is not empty", [Problem(
            "DIR", "abcitrain init writes into a new or empty folder, so that nothing of "
            "yours is overwritten")])
    kit = kit_dir()
    resource, gpu = pick_resource(profile)
    local = get_backend(profile.scheduler).runs_here
    files: dict[str, str] = {
        "jobs/cpt.yaml": _spec("cpt", "cpt", profile, resource, local),
        "jobs/sft.yaml": _spec("sft", "sft", profile, resource, local),
        "README.md": readme(target.name, profile, resource, local),
        ".gitignore": "runs/\n.abcitrain/\n*.sif\nmodels/base/\ncontainers/wheels/\n",
        "models/README.md": ("Put each model in its own folder here: config.json, the "
                             "weights and the tokenizer files, as save_pretrained writes "
                             "them.\n"),
    }
    files["containers/train.def"] = container_definition(target.name, gpu)
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    copies = {"train.py": "jobs/train.py", "data/cpt.txt": "data/cpt/sample.txt",
              "data/sft.jsonl": "data/sft.jsonl"}
    if local:
        copies["models/tiny-llama"] = "models/tiny-llama"
    for src, dst in copies.items():
        path = target / dst
        path.parent.mkdir(parents=True, exist_ok=True)
        if (kit / src).is_dir():
            shutil.copytree(kit / src, path)
        else:
            shutil.copy2(kit / src, path)
        written.append(path)
    return Scaffold(target, tuple(written), resource)
