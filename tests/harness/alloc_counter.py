"""Reading tests/harness/alloc_bytes.c (preloaded with LD_PRELOAD) from a process it counts: the
bytes of CPU tensor storage live now, and the highest value since the last reset, counted
on every thread. Used by tests/harness/peak_bytes.py and tests/harness/engine_bytes.py."""

import ctypes
import gc
import sys

import torch


class AllocCounter:
    """Tensor bytes allocated since this object was made (``live``), and per phase the
    highest such value (``mark`` ends one phase and starts the next)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(None)
        if not hasattr(lib, "abcitrain_live_bytes"):
            sys.exit("tests/harness/alloc_bytes.c is not preloaded (LD_PRELOAD): nothing to "
                     "count with")
        self._live, self._peak = lib.abcitrain_live_bytes, lib.abcitrain_peak_bytes
        self._live.restype = self._peak.restype = ctypes.c_longlong
        self._reset = lib.abcitrain_reset_peak
        self.base = int(self._live())
        self.phase = ""
        self.peaks: dict[str, int] = {}

    def live(self) -> int:
        return int(self._live()) - self.base

    def mark(self, name: str) -> None:
        """End the current phase (its peak is kept, the highest over repeats) and start
        ``name``. A phase called "build" is not kept."""
        if self.phase and self.phase != "build":
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0),
                                         int(self._peak()) - self.base)
        self._reset()
        self.phase = name


def warm_up(model: torch.nn.Module, tokens: torch.Tensor) -> None:
    """One forward and backward pass of the causal language ``model`` on ``tokens`` (as
    labels too) before anything is measured: oneDNN keeps
    the 16-bit matmul kernels it builds (and their buffers, allocated as tensors) for the
    whole process, a fixed few MB on a process's first 16-bit step, which is a cost of the
    CPU backend and not of the training step measured after it."""
    model(input_ids=tokens, labels=tokens).loss.backward()
    del model
    gc.collect()
