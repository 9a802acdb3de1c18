"""A DeepSpeed op build killed midway must not hang later jobs silently.

torch's FileBaton waits forever on a leftover ``lock``; these tests leave real lock files in
a temporary extension folder, and run the deadline in a real subprocess stuck on one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from abcitrain.train.oplocks import EXIT_STUCK, STALE_AFTER_S, check_stale_locks, op_locks


def _lock(root: Path, op: str, age_s: float) -> Path:
    lock = root / "py311_cpu" / op / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    then = time.time() - age_s
    os.utime(lock, (then, then))
    return lock


def test_a_stale_lock_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "fused_adam", STALE_AFTER_S + 60)
    with pytest.raises(RuntimeError) as info:
        check_stale_locks(tmp_path)
    assert str(lock) in str(info.value) and f"rm {lock}" in str(info.value)


def test_a_build_in_progress_is_left_alone(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "shm_comm", 20)          # another job is building right now
    check_stale_locks(tmp_path)
    assert [p for p, _ in op_locks(tmp_path)] == [lock]


def test_a_start_past_its_deadline_says_why_and_exits(tmp_path: Path) -> None:
    lock = _lock(tmp_path, "fused_adam", 20)
    code = textwrap.dedent("""
        import time
        from abcitrain.train.oplocks import start_deadline
        with start_deadline(1.0):
            time.sleep(60)         # stands for FileBaton.wait on a lock nobody will remove
        print("not reached")
    """)
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=50)
    assert done.returncode == EXIT_STUCK and time.monotonic() - started < 50
    assert "did not start within 1 s" in done.stderr and str(lock) in done.stderr
    assert "not reached" not in done.stdout


def test_a_start_within_its_deadline_is_untouched() -> None:
    from abcitrain.train.oplocks import start_deadline

    with start_deadline(30):
        value = 1 + 1
    assert value == 2
