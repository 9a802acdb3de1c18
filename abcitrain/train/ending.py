"""End a rank's process once its run is saved, without the interpreter's teardown.

torch's C++ threads (Gloo's workers, autograd's) can still call into Python while the
interpreter finalizes; the thread is then unwound through a frame that may not throw and the
process aborts with "terminate called without an active exception" (SIGABRT, exit -6). The
race is torch's, open upstream (pytorch/pytorch#190489, and #38230 before it), and rare; but
one aborted rank makes DeepSpeed's launcher kill the others and the job end FAILED after a
complete run (a CI run here saw it on the second node of a two-node ZeRO-3 training, after
the model was exported and the run marked done). So a rank that finished flushes what the
teardown would have flushed, and leaves with ``os._exit``: the exit status is the run's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def end_process(status: int = 0) -> NoReturn:
    """Flush stdout, stderr and every logging handler, then exit with ``status`` at once.

    Call it only after everything the run writes is on disk and the process group is
    destroyed (``train`` returns then): atexit handlers, which this skips, have nothing
    left to do for the kit (the MLflow run was flushed and ended by the tracker)."""
    logging.shutdown()               # what atexit would do: flush and close the handlers
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe or stream: nothing more can be said on it
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
