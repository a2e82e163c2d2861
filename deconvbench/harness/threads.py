"""``--threads N`` applied to every library that runs a thread pool, and restored after.

* torch: ``torch.set_num_threads`` (its intra-op pool: oneDNN, ATen kernels);
* the BLAS under numpy (OpenBLAS, MKL, BLIS) and any OpenMP runtime: ``threadpoolctl``;
* numba: ``numba.set_num_threads`` (clamped to ``NUMBA_NUM_THREADS``, fixed at its import);
* engines that size a pool when a strategy prepares (ONNX Runtime, OpenVINO, XLA): the count
  is published as ``backends.run_threads()`` for them to read;
* XLA (jax): its CPU pool is sized once, when JAX initialises, from ``PJRT_NPROC``; set to the
  count here unless the user set it, so a JAX that initialises inside gets it
  (``backends.jax_.pool``). A JAX already initialised keeps its pool: the size in use is
  recorded with a note. jax is never imported here.

``None`` means every core this process may run on (its CPU affinity), applied explicitly so
that each library uses the same count rather than its own default (torch defaults to
physical cores, OpenBLAS to logical ones). What was applied is returned so it can be
recorded with the results; OpenBLAS environment variables that change its kernels
(``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``) are recorded too, never changed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from ..backends.strategy import pop_run_threads, push_run_threads
from ..errors import InputError

RECORDED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "PJRT_NPROC",
    "NPROC",
    "XLA_FLAGS",
)
"""Environment variables that change how the libraries run; recorded (``PJRT_NPROC`` is set
for XLA when the user hasn't)."""


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadSettings:
    """What :func:`limit_threads` applied, for the results and the sidecar."""

    count: int
    requested: int | None
    applied: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def facts(self) -> dict[str, object]:
        return {
            "threads": self.count,
            "requested": self.requested,
            "applied": dict(self.applied),
            "notes": list(self.notes),
            "env": dict(self.env),
        }


def recorded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in RECORDED_ENV if k in os.environ}


def _validate(threads: int | None) -> int:
    if threads is None:
        return available_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"--threads: must be a positive integer, got {threads!r}")
    return threads


@contextmanager
def _torch_threads(n: int, applied: dict[str, int], notes: list[str]) -> Iterator[None]:
    try:
        import torch
    except ImportError:
        notes.append("torch not installed")
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    applied["torch"] = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _numba_threads(n: int, applied: dict[str, int], notes: list[str]) -> Iterator[None]:
    if importlib.util.find_spec("numba") is None:
        notes.append("numba not installed")
        yield
        return
    import numba

    limit = int(getattr(numba.config, "NUMBA_NUM_THREADS", n))
    if n > limit:
        notes.append(f"numba capped at NUMBA_NUM_THREADS={limit}")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, limit))
    applied["numba"] = numba.get_num_threads()
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextmanager
def _blas_threads(n: int, applied: dict[str, int], notes: list[str]) -> Iterator[None]:
    import numpy  # noqa: F401  # loads the BLAS so threadpoolctl can see it
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=n):
        for pool in threadpool_info():
            key = f"{pool.get('user_api', 'pool')}:{pool.get('internal_api', '?')}"
            applied[key] = int(pool.get("num_threads", n))
        yield


@contextmanager
def _xla_threads(n: int, applied: dict[str, int], notes: list[str]) -> Iterator[None]:
    if importlib.util.find_spec("jax") is None:
        yield
        return
    from ..backends.jax_.pool import pool_size

    with pool_size(n) as pool:
        if pool.threads is not None:
            applied["xla"] = pool.threads
        if pool.note is not None:
            notes.append(pool.note)
        yield


@contextmanager
def limit_threads(threads: int | None) -> Iterator[ThreadSettings]:
    """Apply a thread count to torch, the BLAS/OpenMP pools, numba and XLA (when JAX
    initialises inside); restore on exit."""
    n = _validate(threads)
    applied: dict[str, int] = {}
    notes: list[str] = []
    with ExitStack() as stack:
        stack.enter_context(_torch_threads(n, applied, notes))
        stack.enter_context(_numba_threads(n, applied, notes))
        stack.enter_context(_blas_threads(n, applied, notes))
        stack.enter_context(_xla_threads(n, applied, notes))
        push_run_threads(n)  # for the engines that size their own pools (backends.run_threads)
        stack.callback(pop_run_threads)
        yield ThreadSettings(n, threads, applied, tuple(notes), recorded_env())
