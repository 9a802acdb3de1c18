"""The ``train:`` section of a job spec: what to fine-tune, on what data, for how long.

Light on purpose (no torch): the spec check, ``abcitrain plan`` and the renderer read it on a
login node. The trainer reads the resolved form that ``plan`` writes next to the DeepSpeed
config (``train.json``), so a job runs exactly what was planned and checked.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import voluptuous as vol

from ..util import validation as v

MODES = ("cpt", "sft")
INITS = ("pretrained", "random")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OFFLOADS = ("auto", "none", "optimizer", "optimizer+params")
LAUNCHERS = ("auto", "torchrun", "deepspeed", "mpirun")
SIGNALS = ("USR1", "USR2", "TERM", "INT", "HUP", "URG")
PATH_RE = r"[A-Za-z0-9_./+{}-]{1,255}"
_PATH_MSG = "a path is letters, digits and _ . / + - (no spaces)"


def _auto_or(check: Any) -> Any:
    def run(value: Any) -> Any:
        return "auto" if value == "auto" else check(value)
    return run


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise vol.Invalid(f"{value!r} must be a number above 0")
    return float(value)


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise vol.Invalid(f"{value!r} must be a number in [0, 1)")
    return float(value)


_path = v.matching(PATH_RE, _PATH_MSG)

TRAIN_SCHEMA = vol.Schema({
    vol.Required("mode"): v.one_of(MODES, "mode"),
    vol.Required("model"): _path,
    vol.Optional("init", default="pretrained"): v.one_of(INITS, "init"),
    vol.Required("data"): _path,
    vol.Optional("eval_data"): v.nullable(_path),
    vol.Optional("eval_fraction", default=0.1): _fraction,
    vol.Required("seq_len"): v.int_between(8, 1_048_576),
    vol.Required("global_batch"): v.int_between(1),
    vol.Optional("micro_batch", default="auto"): _auto_or(v.int_between(1)),
    vol.Required("steps"): v.int_between(1),
    vol.Optional("lr", default=2e-5): _positive_number,
    vol.Optional("warmup_steps", default=0): v.int_between(0),
    vol.Optional("weight_decay", default=0.0): _fraction,
    vol.Optional("seed", default=1234): v.int_between(0),
    vol.Optional("precision", default="auto"): v.one_of(PRECISIONS, "precision"),
    vol.Optional("zero", default="auto"): _auto_or(v.int_between(0, 3)),
    vol.Optional("offload", default="auto"): v.one_of(OFFLOADS, "offload"),
    vol.Optional("gradient_checkpointing", default=True): bool,
    vol.Optional("ranks_per_node", default="auto"): _auto_or(v.int_between(1, 64)),
    vol.Optional("margin", default=0.1): _fraction,
    vol.Optional("eval_every", default=0): v.int_between(0),
    vol.Optional("save_every", default=0): v.int_between(0),
    vol.Optional("output_dir", default="runs/{name}"): _path,
    vol.Optional("launcher", default="auto"): v.one_of(LAUNCHERS, "launcher"),
    # this job's MPI options (Open MPI launches), after the profile's launcher.mpirun_args;
    # one plain word each: they reach mpirun through DeepSpeed's --launcher_args
    vol.Optional("mpirun_args", default=[]): v.string_list(v.matching(
        r"[A-Za-z0-9_@%+=:,./^-]+", "one mpirun argument without blanks, quotes or shell "
        "characters (write --mca btl_tcp_if_include bond0 as three items)")),
    vol.Optional("export", default=True): bool,
    vol.Optional("script", default="jobs/train.py"): _path,
    vol.Optional("mlflow", default={}): vol.Schema({
        vol.Optional("tracking_uri"): v.nullable(v.matching(
            r"[A-Za-z][A-Za-z0-9+.-]*:[^\s'\"`$;]{1,400}",
            "a tracking URI such as sqlite:///mlflow.db or http://host:5000")),
        vol.Optional("experiment"): v.nullable(v.matching(
            r"[A-Za-z0-9][A-Za-z0-9_.+ -]{0,99}", "an experiment name is letters, digits, "
            "spaces and _ . + -")),
        vol.Optional("register_as"): v.nullable(v.matching(
            r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", "a registered model name is letters, digits "
            "and _ . -")),
    }),
    vol.Optional("walltime", default={}): vol.Schema({
        vol.Optional("signal", default="USR2"): v.one_of(SIGNALS, "signal"),
        vol.Optional("stop_before", default="0:05:00"): v.duration,
        vol.Optional("max_jobs", default=1): v.int_between(1, 1000),
    }),
})


@dataclass(frozen=True)
class WalltimePolicy:
    """What happens before the walltime ends: the signal the trainer gets, how long before
    the end, and how many jobs in all a training run may take (1: never resubmit)."""

    signal: str = "USR2"
    stop_before_s: int = 300
    max_jobs: int = 1

    @property
    def signum(self) -> int:
        """The signal's number on this system."""
        return int(getattr(signal, f"SIG{self.signal}"))


@dataclass(frozen=True)
class TrainConfig:
    """A validated ``train:`` section; ``"auto"`` fields are settled by the planner."""

    mode: str
    model: str
    data: str
    seq_len: int
    global_batch: int
    steps: int
    init: str = "pretrained"
    eval_data: str | None = None
    eval_fraction: float = 0.1
    micro_batch: int | str = "auto"
    lr: float = 2e-5
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: int = 1234
    precision: str = "auto"
    zero: int | str = "auto"
    offload: str = "auto"
    gradient_checkpointing: bool = True
    ranks_per_node: int | str = "auto"
    margin: float = 0.1
    eval_every: int = 0
    save_every: int = 0
    output_dir: str = "runs/{name}"
    launcher: str = "auto"
    mpirun_args: tuple[str, ...] = ()
    export: bool = True
    script: str = "jobs/train.py"
    tracking_uri: str | None = None
    experiment: str | None = None
    register_as: str | None = None
    walltime: WalltimePolicy = field(default_factory=WalltimePolicy)
    #: The MLflow run's name (a sweep names each task's run by its parameters).
    run_name: str | None = None

    def output_for(self, job_name: str) -> str:
        """The run's folder, with ``{name}`` replaced by the job's name."""
        return self.output_dir.replace("{name}", job_name)

    def to_json(self) -> dict[str, Any]:
        """A plain mapping for train.json."""
        return asdict(self)


def train_problems(data: Any) -> list[Any]:
    """Every problem of a ``train:`` section, with keys prefixed ``train.``."""
    from ..errors import Problem
    return [Problem(f"train.{p.where}" if p.where else "train", p.message, p.severity)
            for p in v.problems_of(TRAIN_SCHEMA, data)]


def parse_train(data: Mapping[str, Any]) -> TrainConfig:
    """Build a TrainConfig from a section that ``train_problems`` found clean."""
    clean = TRAIN_SCHEMA(dict(data))
    clean["mpirun_args"] = tuple(clean["mpirun_args"])
    mlflow = clean.pop("mlflow")
    wall = clean.pop("walltime")
    return TrainConfig(
        **clean, tracking_uri=mlflow.get("tracking_uri"), experiment=mlflow.get("experiment"),
        register_as=mlflow.get("register_as"),
        walltime=WalltimePolicy(wall["signal"], wall["stop_before"], wall["max_jobs"]))


def from_json(data: Mapping[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from train.json (written by ``to_json``)."""
    fields = dict(data)
    fields["walltime"] = WalltimePolicy(**fields["walltime"])
    fields["mpirun_args"] = tuple(fields.get("mpirun_args") or ())
    return TrainConfig(**fields)


def lr_factor(done: int, warmup: int, total: int) -> float:
    """The learning rate's share of ``lr`` for the optimizer step after ``done`` steps:
    a linear warmup over ``warmup`` steps whose FIRST step already trains (1/warmup, not 0),
    then a linear decay towards 0 at ``total``. DeepSpeed's WarmupDecayLR is not used: it
    raises any warmup below 2 to 2 and gives step 0 gamma 0, so with no warmup the first
    two steps trained at lr 0 and the third at lr/2."""
    if warmup > 0 and done < warmup:
        return (done + 1) / warmup
    if total <= warmup:
        return 1.0
    return max(0.0, (total - done) / (total - warmup))
