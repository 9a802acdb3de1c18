"""Upload a project folder to its copy on a login node, sending only what changed.

A file is sent when the copy is missing or differs in size or modification time (whole
seconds, as rsync's default quick check); the copy gets the file's time and permission bits
(the run bit included). Nothing on the remote side is ever deleted. Excluded by pattern: the
defaults below (version control, virtual environments, caches, checkpoints and exported
models, job output files) and the lines of the project's ``.abcitrainignore``. A pattern
without ``/`` matches any path component (``*.pt``, ``.git``); one with ``/`` matches the path
from the project folder (``runs/*/checkpoints``, ``data/raw``), and everything under it.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "*.pyc", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", ".abcitrain/scripts",
    # large data the job writes, not reads: checkpoints, exported models, tracking stores
    "runs/*/checkpoints", "runs/*/model", "runs/*/mlflow.db", "mlruns", "wandb",
    "*.ckpt", "*.pt", "*.pth", "*.safetensors",
    # job output files (NAME.oJOBID, NAME.eJOBID, slurm-JOBID.out)
    "*.o[0-9]*", "*.e[0-9]*", "slurm-*.out",
    # submitted functions (abcitrain.api.executor, submitit): their pickles and logs travel
    # on their own, each once
    "*_submitted.pkl", "*_result.pkl", "*_log.out", "*_log.err", "*.abcitrain-pending.pkl",
)
IGNORE_FILE = ".abcitrainignore"
#: Files from this size on report their progress.
PROGRESS_FROM = 8 * 1024 * 1024

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SyncReport:
    """What a synchronisation did."""

    sent: tuple[str, ...]
    sent_bytes: int
    unchanged: int
    excluded: int


def patterns(root: Path) -> tuple[str, ...]:
    """The default exclusions and the project's own (``.abcitrainignore``, # comments)."""
    own: list[str] = []
    path = root / IGNORE_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                own.append(line.rstrip("/"))
    return (*DEFAULT_EXCLUDES, *own)


def excluded(relative: str, excludes: tuple[str, ...]) -> bool:
    """True when the POSIX path ``relative`` (from the project folder) or a folder above
    it matches one of ``excludes``."""
    parts = relative.split("/")
    for pattern in excludes:
        if "/" in pattern:
            if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern)
                   for i in range(1, len(parts) + 1)):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def local_files(root: Path, excludes: tuple[str, ...]) -> tuple[list[str], int]:
    """The project's files to send (POSIX paths from ``root``), and how many were excluded.
    Symbolic links to folders are not followed (a loop would never end)."""
    found, skipped = [], 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        keep = []
        for name in dirs:
            if excluded(prefix + name, excludes):
                skipped += 1
            else:
                keep.append(name)
        dirs[:] = keep
        for name in files:
            rel = prefix + name
            if excluded(rel, excludes):
                skipped += 1
            elif (root / rel).is_file():
                found.append(rel)
    return sorted(found), skipped


def remote_index(sftp: Any, remote_root: str) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``remote_root`` on the SFTP side (missing: empty)."""
    index: dict[str, tuple[int, int]] = {}

    def walk(folder: str, prefix: str) -> Iterator[None]:
        try:
            entries = sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        for entry in entries:
            mode = entry.st_mode or 0
            if stat.S_ISDIR(mode):
                yield from walk(f"{folder}/{entry.filename}", f"{prefix}{entry.filename}/")
            elif stat.S_ISREG(mode):
                index[prefix + entry.filename] = (entry.st_size or 0, entry.st_mtime or 0)
        yield None

    for _ in walk(remote_root, ""):
        pass
    return index


def synchronise(sftp: Any, root: Path, remote_root: str,
                makedirs: Callable[[str], None], progress: Progress | None = None) -> SyncReport:
    """Send ``root``'s changed files to ``remote_root`` over ``sftp``."""
    excludes = patterns(root)
    files, skipped = local_files(root, excludes)
    there = remote_index(sftp, remote_root)
    sent: list[str] = []
    sent_bytes = 0
    made: set[str] = set()
    for rel in files:
        info = (root / rel).stat()
        if there.get(rel) == (info.st_size, int(info.st_mtime)):
            continue
        target = f"{remote_root}/{rel}"
        folder = target.rsplit("/", 1)[0]
        if folder not in made:
            makedirs(folder)
            made.add(folder)
        callback = None
        if progress is not None and info.st_size >= PROGRESS_FROM:
            def callback(done: int, total: int, rel: str = rel) -> None:
                progress(rel, done, total)
        tmp = f"{folder}/.{rel.rsplit('/', 1)[-1]}.abcitrain-tmp"
        sftp.put(str(root / rel), tmp, callback=callback)
        sftp.chmod(tmp, stat.S_IMODE(info.st_mode))
        sftp.utime(tmp, (int(info.st_atime), int(info.st_mtime)))
        sftp.posix_rename(tmp, target)
        sent.append(rel)
        sent_bytes += info.st_size
    return SyncReport(tuple(sent), sent_bytes, len(files) - len(sent), skipped)
