"""Running a job's command inside a container image: the cluster's runtime (its profile's
``container:``) and the ``exec`` prefix, for a plain command and for a training job's
ranks. Pure: argv out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..domain import ClusterProfile

#: How a training job runs in its image: "ranks" (the launcher on the node, each rank's
#: command inside the image: MPI or torchrun outside, ranks inside) or "launcher" (the
#: whole launcher inside the image, one per node).
PATTERNS = ("ranks", "launcher")


def runtime_of(profile: ClusterProfile) -> tuple[str, str | None, tuple[str, ...]]:
    """The cluster's container command, the module that provides it, and its binds."""
    data = profile.data.get("container") or {}
    return (str(data.get("runtime") or "apptainer"), data.get("module"),
            tuple(data.get("binds") or ()))


def exec_prefix(profile: ClusterProfile, image: str, gpus: int,
                binds: Sequence[str] = ()) -> list[str]:
    """``RUNTIME exec [--nv] [--bind PATH]... IMAGE``: ``--nv`` on GPU nodes, a bind for
    each of the profile's and the job's folders."""
    runtime, _, profile_binds = runtime_of(profile)
    argv = [runtime, "exec"] + (["--nv"] if gpus else [])
    for path in dict.fromkeys((*profile_binds, *binds)):
        argv += ["--bind", path]
    return [*argv, image]


def inside(command: Sequence[str], container: Mapping[str, Any], profile: ClusterProfile,
           gpus: int, training: bool) -> tuple[str, ...]:
    """``command`` run inside the job's image. A training command (``abcitrain launch ...
    -- RANK COMMAND``) keeps the launcher outside and each rank inside (pattern "ranks"),
    or runs whole inside (pattern "launcher")."""
    prefix = exec_prefix(profile, str(container["image"]), gpus,
                         tuple(container.get("binds") or ()))
    if training and container.get("pattern", "ranks") == "ranks" and "--" in command:
        split = list(command).index("--") + 1
        return (*command[:split], *prefix, *command[split:])
    return (*prefix, *command)
