"""Never hang silently on a DeepSpeed op build.

DeepSpeed JIT-compiles ops (the CPU shm op, FusedAdam on GPUs) under torch's extension
folder, which all of a user's jobs share (on ABCI: the shared home). torch guards each build
with a ``lock`` file (``FileBaton``) that has no staleness check: a process killed mid-build
leaves it behind and every later engine start waits on it forever, printing nothing. So the
kit refuses to start when a lock is older than any build takes, naming the file; and the
engine start has a deadline that, when missed, names every lock it finds and exits.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: No op build takes this long: a lock older than this was left by a killed build.
STALE_AFTER_S = 30 * 60
#: How long the engine may take to start (op builds included) before the job gives up.
START_TIMEOUT_ENV = "ABCITRAIN_ENGINE_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 30 * 60
EXIT_STUCK = 3


def extensions_dir() -> Path:
    """torch's extension folder: $TORCH_EXTENSIONS_DIR, else its default under the cache."""
    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "torch_extensions"


def op_locks(root: Path | None = None) -> list[tuple[Path, float]]:
    """Every op build lock under the extension folder, with its age in seconds."""
    root = root or extensions_dir()
    now = time.time()
    found = []
    # <root>/<pyXY_cpu|pyXY_cuZZ>/<op>/lock, or <root>/<op>/lock when the folder is set
    for pattern in ("*/lock", "*/*/lock"):
        for lock in root.glob(pattern):
            try:
                found.append((lock, now - lock.stat().st_mtime))
            except OSError:
                continue            # the build just finished and removed it
    return found


def describe(locks: list[tuple[Path, float]]) -> str:
    """The locks in words, with what to do."""
    return "; ".join(f"{path} ({age / 60:.0f} min old)" for path, age in locks)


def check_stale_locks(root: Path | None = None, stale_after_s: float = STALE_AFTER_S) -> None:
    """Refuse to start (RuntimeError) when an op build lock is older than any build takes."""
    stale = [(p, age) for p, age in op_locks(root) if age > stale_after_s]
    if stale:
        raise RuntimeError(
            f"a DeepSpeed op build was killed midway and left its lock behind: "
            f"{describe(stale)}. Every engine start would wait on it forever. If no job of "
            f"yours is building ops right now, remove it: rm {' '.join(str(p) for p, _ in stale)}")


@contextmanager
def start_deadline(seconds: float | None = None, what: str = "the DeepSpeed engine"
                   ) -> Iterator[None]:
    """Run the block; if it has not finished after ``seconds`` (default: the environment's
    ABCITRAIN_ENGINE_START_TIMEOUT, else 30 min), say so, naming any op build locks, and
    end the process with exit status 3 rather than wait on forever."""
    limit = seconds if seconds is not None else float(
        os.environ.get(START_TIMEOUT_ENV) or DEFAULT_START_TIMEOUT_S)
    done = threading.Event()

    def expire() -> None:
        if done.is_set():
            return
        locks = op_locks()
        print(f"abcitrain: {what} did not start within {limit:.0f} s"
              + (f"; op build locks: {describe(locks)} (a build killed midway leaves one: "
                 "remove it if no job of yours is building)" if locks else
                 " (no op build lock found; see the output above)")
              + f". Giving up (exit {EXIT_STUCK}); raise {START_TIMEOUT_ENV} if a first "
              "build needs longer.", file=sys.stderr, flush=True)
        os._exit(EXIT_STUCK)

    timer = threading.Timer(limit, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        done.set()
        timer.cancel()
