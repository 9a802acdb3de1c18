"""Which scheduler the submit program on this machine's PATH belongs to.

PBS's and Grid Engine's commands share names (qsub, qstat, qrsub): a profile that talks to
the scheduler here (``login.mode: auto`` on a login node, or ``local``) must not run another
scheduler's qsub as if it were its own. Each backend says how to ask (``identify_argv``) and
how its answer reads; the answer is kept per program and its modification time, so the
question costs one run per installed program, not one per command. When another scheduler's
program comes first on PATH and this one's later (both clients installed, PBS's appended to
PATH by its profile script), this one's folder is used by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from ..backends import all_backends, get_backend
from ..domain import ClusterProfile
from ..util.paths import data_dir

_CACHE = "installed-schedulers.json"


def identify(path: str) -> tuple[str, str]:
    """(scheduler name, what it said) of the program at ``path``: ("?", its first line)
    when no registered backend recognises its answer."""
    real = Path(path).resolve()
    key = f"{real}:{real.stat().st_mtime_ns}"
    cache_file = data_dir() / _CACHE
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache.get(key), list):
        name, said = cache[key]
        return str(name), str(said)
    found = ("?", "")
    program = Path(path).name
    for backend in all_backends():
        argv = backend.identify_argv
        if not argv or argv[0] != program:
            continue
        try:
            done = subprocess.run([path, *argv[1:]], capture_output=True, text=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = f"{done.stdout}\n{done.stderr}"
        said = backend.identifies(text)
        if said:
            found = (backend.name, said)
            break
        found = ("?", next((ln for ln in text.splitlines() if ln.strip()), "")[:80])
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache[key] = list(found)
        cache_file.write_text(json.dumps(cache))
    except OSError:
        pass          # a read-only state folder: ask again next time
    return found


def installed(program: str) -> tuple[str, str] | None:
    """(scheduler name, what it said) of ``program``, the first on PATH; None when it is
    not there."""
    path = shutil.which(program)
    return None if path is None else identify(path)


def _on_path(program: str) -> list[str]:
    """Every ``program`` on PATH, in PATH's order."""
    found: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / program
        if candidate.is_file() and os.access(candidate, os.X_OK) and \
                str(candidate) not in found:
            found.append(str(candidate))
    return found


def own_folder(profile: ClusterProfile) -> str | None:
    """The folder of ``profile``'s scheduler's commands when another scheduler's program of
    the same name comes first on PATH (a machine with Grid Engine's and PBS's clients both,
    PBS's appended by /etc/profile.d/pbs.sh, as in a PBS job's own environment); None when
    the first one is right, or none is."""
    backend = get_backend(profile.scheduler)
    if not backend.identify_argv:
        return None
    paths = _on_path(backend.identify_argv[0])
    if not paths or identify(paths[0])[0] in (backend.name, "?"):
        return None
    for path in paths[1:]:
        if identify(path)[0] == backend.name:
            return str(Path(path).parent)
    return None


def mismatch(profile: ClusterProfile) -> str | None:
    """Why this machine's submit program is not ``profile``'s scheduler; None when it is,
    when the scheduler's own comes later on PATH (``own_folder``), or when the backend has
    no way to ask."""
    backend = get_backend(profile.scheduler)
    if not backend.identify_argv:
        return None
    program = backend.identify_argv[0]
    got = installed(program)
    if got is None or got[0] in (backend.name, "?") or own_folder(profile) is not None:
        return None        # not there, this scheduler's, or nothing we can name: not refused
    path = shutil.which(program)
    what = f"{got[1]!r}, a {got[0]} scheduler's" if got[0] != "?" else f"it says {got[1]!r}"
    return (f"the {program} on PATH ({path}) is not {backend.name}'s ({what}), but cluster "
            f"{profile.name!r} uses {backend.name}: put {backend.name}'s commands first on "
            "PATH, or set the profile's login.mode to ssh to reach its login node")


def scheduler_is_here(profile: ClusterProfile) -> bool:
    """Whether ``profile``'s commands run on this machine rather than over SSH: no login
    host, ``login.mode: local``, or ``auto`` where the scheduler's submit command is
    installed here (the login node, or a machine like it)."""
    destination = profile.login.get("ssh")
    mode = str(profile.login.get("mode") or "auto")
    if not destination or mode == "local":
        return True
    submit_program = get_backend(profile.scheduler).submit_argv("job.sh", ())[0]
    return mode == "auto" and shutil.which(submit_program) is not None
