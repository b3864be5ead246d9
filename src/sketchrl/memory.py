"""Freed memory kept in the process (glibc's malloc), for CPU training loops.

Every batch allocates and frees the same large buffers (a sampled pass records tens of MB of
activations). glibc returns blocks above its mmap threshold, and the free top of its heap, to
the system, so the next batch can page-fault that memory in again (GRPO's batch of 64 ran
1.15x faster without it on a 2-core CPU; ``benchmarks/bench_memory.py``; its adaptive threshold
settles by itself in a long run of small batches). :func:`retain_freed_memory` raises
both thresholds once per process (as the caching allocators of GPUs, jemalloc or tcmalloc keep
memory): the process keeps its peak memory for reuse. Arithmetic is untouched (the same weights
bit for bit). ``SKETCHRL_MALLOC=0`` leaves malloc as it is; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from sketchrl.config import switched_on

#: Environment variable that turns this off ("0", "false", "no", "off").
SWITCH = "SKETCHRL_MALLOC"

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling for the mmap threshold on 64 bits
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: trim only above 2 GiB of free heap top


@functools.lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Keep freed blocks up to 32 MiB, and the heap's free top, for reuse by this process;
    returns whether glibc took the settings (False when switched off or not glibc)."""
    if not switched_on(SWITCH):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
