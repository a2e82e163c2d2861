"""Splitting a numpy strategy's batch between threads, each with a single-threaded BLAS.

numpy's layout passes (im2col copies, transposes) run on one core while the BLAS's other
threads wait, or spin next to them after a GEMM. Split into as many parts as the BLAS has
threads, each part of the batch runs its own passes and GEMMs on its own core: the passes
run in parallel, and the GEMMs, each on one thread, lose little as long as they stay
wide (:data:`SPLIT_COLUMNS`). The BLAS is limited to one thread for the call
(threadpoolctl) and given its own count back after it, so nothing outside the call sees
the change.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import cache
from typing import Any, TypeVar

from ...problem import Problem

T = TypeVar("T")

SPLIT_COLUMNS = 512
"""The fewest GEMM columns (input positions × batch entries) a part keeps. dcgan's
backward on 2 cores, against one GEMM per pass on both threads: g3 (512 columns a part)
15.9 → 13.8 ms, g4 (2048) 16.5-19.2 → 14.4-15.2 ms; g2 (128) 13.2-13.9 → 14.3-15.2 ms,
slower, so it stays whole."""


@cache
def _blas() -> Any:
    """threadpoolctl's handle on the loaded BLAS libraries (found once: 1-2 ms)."""
    import numpy  # noqa: F401  # loads the BLAS so threadpoolctl can see it
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The threads the BLAS uses now (1 where there is none threadpoolctl knows)."""
    controllers = _blas().lib_controllers
    return max((c.num_threads for c in controllers), default=1)


def parts(batch: int, columns_per_entry: int) -> int:
    """How many parts to split a batch into: one per BLAS thread, as long as each keeps
    :data:`SPLIT_COLUMNS` GEMM columns (``columns_per_entry`` per batch entry)."""
    most = batch * columns_per_entry // SPLIT_COLUMNS
    return max(1, min(blas_threads(), batch, most))


def most_parts(batch: int) -> int:
    """The most parts :func:`parts` can give on this machine (one per core): for memory
    estimates, which must not depend on the thread count of the moment."""
    return max(1, min(batch, os.cpu_count() or 1))


def bounds(batch: int, count: int) -> list[tuple[int, int]]:
    """``count`` contiguous, near-equal ranges of batch entries."""
    edges = [batch * i // count for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def over_batch(problem: Problem, count: int, work: Callable[[Problem, slice], T]) -> list[T]:
    """``work(sub, entries)`` for ``count`` contiguous parts of the batch (:func:`bounds`),
    side by side (:func:`in_parts`): ``sub`` is ``problem`` with that part's batch size,
    ``entries`` its slice of the batch axis. The results in batch order."""
    ranges = bounds(problem.batch, count)

    def part(i: int) -> T:
        lo, hi = ranges[i]
        return work(dataclasses.replace(problem, batch=hi - lo), slice(lo, hi))

    return in_parts(count, part)


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deconvbench-numpy")


def in_parts(count: int, work: Callable[[int], T]) -> list[T]:
    """``[work(0), …, work(count − 1)]``, each in its own thread (this one runs the first)
    with the BLAS on one thread; the results in order."""
    if count == 1:
        return [work(0)]
    with _blas().limit(limits=1):
        others = [_pool(count - 1).submit(work, i) for i in range(1, count)]
        try:
            first = work(0)
        finally:
            wait(others)  # none outlives the BLAS's limit, even when this one fails
        return [first, *(future.result() for future in others)]
