"""``python -m abcitrain.api.runner FOLDER``: run one submitted function inside its job.

The job script (rendered by abcitrain for any scheduler) starts this. It sends the process's
output to submitit's log files for this job, arms a timer that sends the preemption signal
(SUBMITIT_PREEMPT_SIGNAL, USR2 by default) a little before the walltime ends, since only
Slurm can be asked to signal ahead of the limit, then hands over to submitit's
``process_job``: it loads the pickled call, runs it, and pickles the result or the
traceback; on the signal a checkpointable function is checkpointed and requeued
(``AbcitrainJobEnvironment``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

#: Seconds before the walltime's end at which the function is told to checkpoint: enough to
#: write a checkpoint and requeue, yet a small share of a short job.
MAX_MARGIN_S = 120


def margin_s(walltime_s: int) -> float:
    """How long before the end of a ``walltime_s`` job the preemption signal is sent."""
    return min(MAX_MARGIN_S, max(5.0, walltime_s / 10))


def _arm_walltime_signal() -> None:
    start = float(os.environ.get("ABCITRAIN_JOB_START") or time.time())
    walltime = int(os.environ.get("ABCITRAIN_WALLTIME_S") or 0)
    if walltime <= 0:
        return
    name = "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    signum = getattr(signal, name, signal.SIGUSR2)
    delay = start + walltime - margin_s(walltime) - time.time()
    timer = threading.Timer(max(0.0, delay), os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _to_log_files(folder: str) -> None:
    from submitit.core.utils import JobPaths

    from .executor import AbcitrainJobEnvironment

    paths = JobPaths(folder, job_id=AbcitrainJobEnvironment().job_id, task_id=0)
    paths.folder.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    for stream, path in ((1, paths.stdout), (2, paths.stderr)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, stream)
        os.close(fd)


def main(argv: list[str] | None = None) -> None:
    """Run the function submitted in FOLDER for this job (or array task)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m abcitrain.api.runner FOLDER")
    os.environ.setdefault("SUBMITIT_EXECUTOR", "abcitrain")
    _to_log_files(args[0])
    _arm_walltime_signal()
    from submitit.core.submission import process_job

    process_job(args[0])


if __name__ == "__main__":
    main()
