"""glibc ``malloc`` settings of the long-running agent (its peak RSS on a small board).

Two knobs of glibc's allocator, reached through :mod:`ctypes` (glibc only; on another C
library every function here does nothing and says so by returning False):

- :func:`limit_arenas`: ``mallopt(M_ARENA_MAX, n)``. glibc gives each thread that
  allocates under contention an arena of its own (up to 8 per core); the agent's threads
  (``asyncio.to_thread`` for scoring, aiosqlite's connection threads, the metrics server)
  then each keep freed memory in their own arena. Must run before those threads start
  (``edge run`` calls it first); the ``MALLOC_ARENA_MAX`` environment variable, when set,
  wins (the operator's choice, e.g. in the systemd unit).
- :func:`trim`: ``malloc_trim(0)`` gives the free pages of every arena back to the kernel
  (``madvise(MADV_DONTNEED)`` inside the heap, not only at its top). After a catch-up
  batch of tens of MB of JSON, the freed pages would otherwise stay resident.

Source: glibc manual, "Malloc Tunable Parameters"; mallopt(3), malloc_trim(3).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from functools import cache
from typing import Final

__all__ = ["DEFAULT_ARENAS", "limit_arenas", "trim"]

log = logging.getLogger("edge.memory")

M_ARENA_MAX: Final = -8
"""mallopt(3) parameter number of ``M_ARENA_MAX`` (glibc malloc.h)."""
DEFAULT_ARENAS: Final = 2
"""Arenas ``edge run`` allows when ``MALLOC_ARENA_MAX`` is not set."""


@cache
def _glibc() -> ctypes.CDLL | None:
    """The process' C library when it is glibc (it has ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name or "libc.so.6")
        lib.malloc_trim.argtypes = [ctypes.c_size_t]
        lib.malloc_trim.restype = ctypes.c_int
        lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


def limit_arenas(n: int = DEFAULT_ARENAS) -> bool:
    """Allow at most ``n`` (>= 1) malloc arenas in this process, unless the environment
    sets ``MALLOC_ARENA_MAX`` (then glibc already applied it). True when set by this call.

    Raises: ValueError when ``n < 1``."""
    if n < 1:
        raise ValueError(f"malloc arenas must be >= 1, got {n}")
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    lib = _glibc()
    if lib is None:
        return False
    return bool(lib.mallopt(M_ARENA_MAX, n))


def trim() -> bool:
    """``malloc_trim(0)``: return every arena's free pages to the kernel. True when memory
    was released; False when none was, or the C library is not glibc. Costs about a
    millisecond per 100 MB of heap; call it after a large batch, not per record."""
    lib = _glibc()
    if lib is None:
        return False
    return bool(lib.malloc_trim(0))
