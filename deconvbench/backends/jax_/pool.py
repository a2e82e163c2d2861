"""The size of XLA's CPU thread pool: set before JAX initialises, read back after.

XLA's CPU client sizes its intra-op pool (the threads named ``tf_XLAEigen``) once, when
JAX initialises its backends (the first ``jax.devices()``, ``device_put`` or computation),
from the environment variable ``PJRT_NPROC`` (``NPROC`` when that is unset), else from the
CPUs of the process's affinity mask. Nothing changes it later in the process's life.

Measured with jax/jaxlib 0.10.2 on a 2-core Linux machine (a 16×128×32×32 convolution,
fresh processes): ``PJRT_NPROC=1`` gives one pool thread and CPU time / wall time 1.00
(54 ms), ``PJRT_NPROC=2`` two and 1.88 (31 ms). The flags older advice names do nothing
here: ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` still runs two threads (1.89), and
``intra_op_parallelism_threads=N`` is no XLA flag at all (alone in ``XLA_FLAGS`` it aborts
the process).

So the count is set where it can still take effect: ``harness.threads.limit_threads`` sets
``PJRT_NPROC`` (unless the user did) for as long as a run lasts, and a preparation that is
the first to initialise JAX does the same with ``backends.run_threads()``. A run's process
initialises JAX only at its first jax row, inside ``limit_threads``, so it gets the run's
count; ``--isolate`` workers are spawned fresh, inside the parent's ``limit_threads``, and
get it too. JAX rows get no worker of their own: a fresh process per row would pay JAX's
import and initialisation (about a second) and lose nothing XLA caches. Where JAX was
initialised earlier with another count (a library user's process, a test session), rows
still run, and the pool's size in use is what is recorded, with a note.

This module never imports jax: it looks at ``sys.modules`` to learn whether JAX is loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

POOL_ENV = "PJRT_NPROC"
"""The variable XLA's CPU client reads for its pool size (``NPROC`` is read after it)."""
POOL_ENVS = (POOL_ENV, "NPROC")
POOL_THREAD_NAME = "tf_XLAEigen"
"""The name (``/proc/self/task/*/comm``) of the pool's threads."""

_ours: list[str] = []
"""Values of ``PJRT_NPROC`` that :func:`pool_size` set and has not yet restored."""


def initialized() -> bool:
    """Whether JAX has created its backends in this process (imports nothing)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is None:
        return False
    check = getattr(bridge, "backends_are_initialized", None)
    if callable(check):
        return bool(check())
    return bool(getattr(bridge, "_backends", None))


def threads_in_use() -> int | None:
    """The pool threads alive in this process, counted by name; None when JAX has not
    initialised or the threads cannot be seen (no ``/proc``)."""
    if not initialized():
        return None
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as comm:
                name = comm.read().strip()
        except OSError:  # the thread ended while we looked
            continue
        count += name.startswith(POOL_THREAD_NAME)
    return count or None


def environment_size() -> tuple[str, int] | None:
    """The variable that sizes the pool at initialisation and its value, when one is set
    to a positive integer (XLA reads the first of :data:`POOL_ENVS` that parses)."""
    for name in POOL_ENVS:
        raw = os.environ.get(name)
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            continue
        return (name, value) if value > 0 else None
    return None


def user_size() -> tuple[str, int] | None:
    """:func:`environment_size` when the user set it (not :func:`pool_size`)."""
    found = environment_size()
    if found is None:
        return None
    if found[0] == POOL_ENV and _ours and os.environ.get(POOL_ENV) == _ours[-1]:
        return None
    return found


@dataclass(frozen=True)
class PoolState:
    """What XLA's pool has, or will have when JAX initialises, and why."""

    threads: int | None
    """The pool's size: counted when JAX is initialised, else what it will be."""
    initialized: bool
    note: str | None = None
    """Set when the pool does not (or will not) have the requested count."""


def state(requested: int | None) -> PoolState:
    """What the pool has (JAX initialised) or will have, against the ``requested`` count
    (None: no count requested, so nothing to note)."""
    if requested is None:
        found = environment_size()
        if initialized():
            return PoolState(threads_in_use(), True)
        return PoolState(None if found is None else found[1], False)
    if initialized():
        used = threads_in_use()
        if used is None:
            return PoolState(None, True, "xla: initialised before the run; pool size unknown")
        if used != requested:
            return PoolState(
                used,
                True,
                f"xla: its pool was fixed at {used} threads when JAX initialised, before "
                f"--threads {requested} could reach it (run with --isolate, or set {POOL_ENV})",
            )
        return PoolState(used, True)
    user = user_size()
    if user is None:
        return PoolState(requested, False)
    name, value = user
    if value != requested:
        note = f"xla: {name}={value} in the environment overrides --threads {requested}"
        return PoolState(value, False, note)
    return PoolState(value, False)


@contextmanager
def pool_size(requested: int) -> Iterator[PoolState]:
    """Make XLA's pool ``requested`` threads if JAX initialises inside, unless the user set
    the size; yields what the pool has or will have. Restores ``PJRT_NPROC`` on exit."""
    if initialized() or user_size() is not None:
        yield state(requested)
        return
    previous = os.environ.get(POOL_ENV)
    os.environ[POOL_ENV] = str(requested)
    _ours.append(os.environ[POOL_ENV])
    try:
        yield state(requested)
    finally:
        _ours.pop()
        if previous is None:
            os.environ.pop(POOL_ENV, None)
        else:
            os.environ[POOL_ENV] = previous
