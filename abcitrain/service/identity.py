"""Which scheduler the submit program on this machine's PATH belongs to.

PBS's and Grid Engine's commands share names (qsub, qstat, qrsub): a profile that talks to
the scheduler here (``login.mode: auto`` on a login node, or ``local``) must not run another
scheduler's qsub as if it were its own. Each backend says how to ask (``identify_argv``) and
how its answer reads; the answer is kept per program and its modification time, so the
question costs one run per installed program, not one per command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..backends import all_backends, get_backend
from ..domain import ClusterProfile
from ..util.paths import data_dir

_CACHE = "installed-schedulers.json"


def installed(program: str) -> tuple[str, str] | None:
    """(scheduler name, what it said) of ``program`` on PATH; None when it is not there or
    no registered backend recognises its answer (("?", its first line) then)."""
    path = shutil.which(program)
    if path is None:
        return None
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


def mismatch(profile: ClusterProfile) -> str | None:
    """Why this machine's submit program is not ``profile``'s scheduler; None when it is
    (or when the backend has no way to ask)."""
    backend = get_backend(profile.scheduler)
    if not backend.identify_argv:
        return None
    program = backend.identify_argv[0]
    got = installed(program)
    if got is None or got[0] in (backend.name, "?"):
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
