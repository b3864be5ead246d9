"""Independent CPU batches in worker threads, each op single-threaded.

On a few cores, running one batch per core (torch's intra-op threads set to 1) beats splitting
every op of one batch over the cores: no synchronisation between the cores after every op,
each core's batch stays in its own cache, and progress degrades gracefully when other
processes load the CPU. Torch releases the GIL inside its ops, so the threads run in parallel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Batch = TypeVar("Batch")
Result = TypeVar("Result")


@contextlib.contextmanager
def single_threaded_ops() -> Iterator[None]:
    """torch's intra-op threads set to 1 (process-wide) for the duration, then restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def map_batches(
    function: Callable[[Batch], Result], batches: Sequence[Batch], workers: int | None = None
) -> Iterator[Result]:
    """``function(batch)`` for each batch, in order; with ``workers > 1`` (default: torch's
    thread count) in that many threads with single-threaded ops. ``function`` must enter any
    thread-local context it needs itself (``torch.inference_mode``, ``torch.autocast``)."""
    workers = workers or torch.get_num_threads()
    if workers <= 1 or len(batches) <= 1:
        yield from map(function, batches)
        return
    with single_threaded_ops(), ThreadPoolExecutor(min(workers, len(batches))) as pool:
        yield from pool.map(function, batches)
