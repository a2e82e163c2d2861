"""Peak memory of ONE call of a prepared strategy, in MB (10^6 bytes).

CPU: two readings, the larger is reported.

* ``tracemalloc`` traces the call: numpy reports every array allocation to it, so this is
  the exact peak of numpy (and Python) memory allocated during the call and alive at once,
  independent of what the C allocator does with pages. It does not see memory that native
  libraries allocate themselves: torch's CPU tensors, oneDNN and BLAS workspaces, numba's
  runtime.
* The resident-set high-water mark: on Linux, writing ``5`` to ``/proc/self/clear_refs``
  resets the kernel's ``VmHWM`` to the current RSS, so ``VmHWM`` after the call minus RSS
  before it is the call's peak growth of resident pages, whoever allocated them. Memory
  that malloc kept after earlier frees is resident already, and reusing it is no growth: so
  glibc's ``malloc_trim(0)`` first hands every free page of every arena back to the kernel
  (without it, torch's allocations read as ~0 after the first few strategies). It stays a
  lower bound: memory allocated but never touched is not resident, and pages that a library
  holds in its own pools (oneDNN's primitive cache, numba's) are not new. Where the reset
  is not allowed, the fallback is ``getrusage``'s ``ru_maxrss``, which only moves when the
  call sets a new peak for the whole process (coarser still).

CUDA: the caching allocator's peak (``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``) minus what was allocated before the call. cuDNN and cuBLAS
workspaces come from that allocator; memory a library takes with raw ``cudaMalloc`` does not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import resource
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MB = 1e6
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class MemoryReading:
    """A peak in MB, or None with the reason; ``method`` names how it was read."""

    mb: float | None
    method: str
    reason: str = ""


def _status_kb(field: str) -> int | None:
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def _reset_hwm() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux >= 4.0)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@cache
def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def cpu_peak(call: Callable[[], object], synchronize: Callable[[], None]) -> MemoryReading:
    """Peak memory of one CPU call: max(tracemalloc peak, RSS high-water growth)."""
    trim = _malloc_trim()
    if trim is not None:
        trim()
    hwm_reset = _reset_hwm()
    rss_before = _status_kb("VmRSS") if hwm_reset else None
    maxrss_before = _maxrss_bytes()
    tracing_already = tracemalloc.is_tracing()
    if not tracing_already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        result = call()
        synchronize()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        if not tracing_already:
            tracemalloc.stop()
    del result
    hwm_after = _status_kb("VmHWM") if hwm_reset else None
    if rss_before is not None and hwm_after is not None:
        rss_growth = max(0, hwm_after - rss_before) * 1024
        method = "max(tracemalloc, VmHWM growth" + (" after malloc_trim)" if trim else ")")
    else:
        rss_growth = max(0, _maxrss_bytes() - maxrss_before)
        method = "max(tracemalloc, ru_maxrss growth)"
    return MemoryReading(max(traced_peak - base, rss_growth) / MB, method)


def cuda_peak(call: Callable[[], object], synchronize: Callable[[], None]) -> MemoryReading:
    """Peak of torch's CUDA caching allocator during one call, above what it held before."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    result = call()
    synchronize()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del result
    return MemoryReading(max(0, peak - base) / MB, "torch.cuda.max_memory_allocated")


def peak_memory(
    call: Callable[[], object], synchronize: Callable[[], None], device: str
) -> MemoryReading:
    """Peak memory of one call on ``device``; never raises for a measurement problem.

    Exceptions of the call itself propagate (they are the strategy's failure, not ours).
    """
    if device.startswith("cuda"):
        return cuda_peak(call, synchronize)
    if device == "cpu":
        return cpu_peak(call, synchronize)
    return MemoryReading(None, "none", f"no memory probe for device {device!r}")
