"""Giving memory back after long jobs (issue 12.16).

A training run or Predict all allocates hundreds of MiB of short-lived tensors in
worker threads. glibc's malloc keeps what they freed in its per-thread arenas, so the
app stayed at its peak (2.2 GB after a Retrain) long after the run ended.
``malloc_trim(0)`` returns the free pages of every arena to the system; it is cheap
(milliseconds) and only called when a job has ended. Elsewhere (macOS, Windows, musl)
it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

ENABLED = True   # benchmarks/bench_memory.py --no-trim turns it off to measure the difference

_libc = None


def _malloc_trim():
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
            _libc.malloc_trim.restype = ctypes.c_int
        except (OSError, AttributeError):
            _libc = False
    return _libc.malloc_trim if _libc else None


def release_memory(*_args: object, collect: bool = True) -> bool:
    """Collect garbage (unless ``collect`` is False) and return the C heap's free pages; True if trimmed."""
    if not ENABLED:
        return False
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
