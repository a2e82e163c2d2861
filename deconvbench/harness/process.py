"""The process state a measurement runs in: the allocator's, and the thread pools'.

The same call can run at very different speeds depending on what the process did before it.
Two mechanisms do most of it, and both are set here rather than left to chance:

- **The allocator's thresholds.** glibc serves an allocation at or above its mmap threshold
  with fresh pages from the kernel and returns them on free, so every call that allocates
  its output or workspace that way pays a page fault per 4 KiB page, and the kernel zeroes
  each page. The threshold starts at 128 KiB and rises (up to 32 MiB) each time a larger
  mmapped block is freed, so a process's speed depends on whether it ever freed a big block.
  :func:`set_memory_state` fixes the thresholds: ``warm`` at the top of glibc's own range (a
  long-running program that has freed large blocks reuses its heap), ``cold`` at the bottom
  (a fresh process: every large block is a fresh mapping). Fixing them also stops glibc from
  moving them during the run.
- **Spinning thread pools.** After a call, OpenBLAS's worker threads spin for a while
  (about 2^28 cycles, a tenth of a second here) before they sleep. A strategy timed just
  after numpy's BLAS shares its cores with them. :func:`settle_thread_pools` stops
  OpenBLAS's workers before a measurement (the next BLAS call starts them again), so no
  strategy is timed next to another's spinning threads.

Under jemalloc or tcmalloc (``LD_PRELOAD``) glibc's thresholds mean nothing: the allocator's
own settings apply, and are recorded as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, get_args

from ..env import allocator as env_allocator
from ..errors import InputError

MemoryState = Literal["warm", "cold"]
MEMORY_STATES: tuple[MemoryState, ...] = get_args(MemoryState)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""mallopt's parameter numbers (glibc's malloc.h)."""
MIB = 2**20
THRESHOLDS: dict[MemoryState, dict[str, int]] = {
    # glibc's dynamic rule raises the mmap threshold to the size of a freed mmapped block, up
    # to 32 MiB on 64-bit, and keeps the trim threshold at twice it: the top of that range.
    "warm": {"M_MMAP_THRESHOLD": 32 * MIB, "M_TRIM_THRESHOLD": 64 * MIB},
    # glibc's starting values, held there: what a fresh process meets.
    "cold": {"M_MMAP_THRESHOLD": 128 * 1024, "M_TRIM_THRESHOLD": 128 * 1024},
}
_PARAMETERS = {"M_MMAP_THRESHOLD": M_MMAP_THRESHOLD, "M_TRIM_THRESHOLD": M_TRIM_THRESHOLD}


ALLOCATOR_LIBRARIES = {"jemalloc": "jemalloc", "tcmalloc": "tcmalloc_minimal"}
"""``--allocator`` choices and the library each loads (Debian: libjemalloc2,
libtcmalloc-minimal4)."""


def allocator_library(name: str) -> str:
    """The library ``LD_PRELOAD`` needs for ``--allocator name``; InputError when it is not
    installed here."""
    if name not in ALLOCATOR_LIBRARIES:
        choices = ", ".join(ALLOCATOR_LIBRARIES)
        raise InputError(f"--allocator: expected one of {choices}, got {name!r}")
    found = ctypes.util.find_library(ALLOCATOR_LIBRARIES[name])
    if found is None:
        package = {"jemalloc": "libjemalloc2", "tcmalloc": "libtcmalloc-minimal4"}[name]
        raise InputError(
            f"--allocator {name}: lib{ALLOCATOR_LIBRARIES[name]} is not installed "
            f"(Debian/Ubuntu: apt-get install {package})"
        )
    return found


def check_memory_state(text: str) -> MemoryState:
    if text not in MEMORY_STATES:
        raise InputError(f"--memory-state: expected warm or cold, got {text!r}")
    return text  # type: ignore[return-value]


def allocator_in_use() -> str | None:
    """The malloc this process calls: glibc, jemalloc, tcmalloc, mimalloc, musl, or None."""
    library = env_allocator.malloc_library()
    return None if library is None else env_allocator.name_of(library)


@cache
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None where the C library has none (musl, macOS)."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MemorySettings:
    """What :func:`set_memory_state` did, for the sidecar."""

    state: MemoryState
    allocator: str
    applied: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def facts(self) -> dict[str, object]:
        return {
            "state": self.state,
            "allocator": self.allocator,
            "applied": dict(self.applied),
            "note": self.note,
        }


def set_memory_state(state: MemoryState) -> MemorySettings:
    """Fix the allocator's thresholds for ``state`` for the rest of the process."""
    name = allocator_in_use()
    if name != "glibc":
        note = f"{name or 'an unknown malloc'}: its own settings apply (glibc's thresholds don't)"
        return MemorySettings(state, name or "unknown", note=note)
    mallopt = _mallopt()
    if mallopt is None:
        return MemorySettings(state, name, note="no mallopt: glibc's defaults apply")
    applied = {}
    for name, value in THRESHOLDS[state].items():
        if mallopt(_PARAMETERS[name], value) == 1:  # mallopt returns 1 on success
            applied[name] = value
    return MemorySettings(state, "glibc", applied)


# --- thread pools ------------------------------------------------------------------------------


@cache
def _openblas_shutdowns() -> tuple[Callable[[], None], ...]:
    """``blas_thread_shutdown_`` of every OpenBLAS loaded now (numpy's, scipy's...)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ()
    found = []
    for pool in threadpool_info():
        if pool.get("internal_api") != "openblas":
            continue
        try:
            function = ctypes.CDLL(str(pool["filepath"])).blas_thread_shutdown_
        except (OSError, AttributeError, KeyError):
            continue
        function.restype = ctypes.c_int
        found.append(function)
    return tuple(found)


def settle_thread_pools() -> None:
    """Stop OpenBLAS's worker threads, spinning or not; the next BLAS call starts them again.

    Cheap (a thread join per worker, microseconds when they are idle), and a no-op where
    there is no OpenBLAS.
    """
    for shutdown in _openblas_shutdowns():
        shutdown()
