"""Facts about the machine and the libraries that a benchmark's numbers depend on.

``collect()`` is what ``deconvbench env`` prints and what every run's sidecar records, so a
result can be explained (or distrusted) later: a different BLAS, a CPU governor set to
``powersave``, ``OMP_NUM_THREADS`` left at 1, another driver. It must be cheap and must
never fail: every section is probed on its own, and a section that cannot be probed
becomes ``None`` values plus a ``reason`` instead of an exception.

Its modules: ``probe`` (what every probe shares), ``system`` (deconvbench, Python, the OS,
memory, variables), ``cpu``, ``libraries`` (numpy's BLAS, torch and oneDNN, CUDA, numba,
thread pools, the engines), ``plugins`` (the installed backend plugins' distributions),
``allocator``, ``fingerprint`` (the facts a plan holds under) and ``load`` (other processes'
CPU use, before and after a run).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from . import allocator, cpu, libraries, plugins, system
from .probe import Facts, guarded

SECTIONS: dict[str, Callable[[], Facts]] = {
    "deconvbench": system.deconvbench,
    "python": system.python,
    "os": system.os_,
    "cpu": cpu.cpu,
    "memory": system.memory,
    "numpy": libraries.numpy,
    "torch": libraries.torch,
    "cuda": libraries.cuda,
    "numba": libraries.numba,
    "engines": libraries.engines,
    "plugins": plugins.plugins,
    "threadpools": libraries.threadpools,
    "allocator": allocator.allocator,
    "variables": system.variables,
}


def collect() -> dict[str, object]:
    """Every section of facts; a section whose probe fails carries the error as its reason."""
    facts: dict[str, object] = {"collected_at": datetime.now(UTC).isoformat(timespec="seconds")}
    return facts | {name: guarded(section) for name, section in SECTIONS.items()}


def summary(facts: dict[str, object]) -> str:
    """One line for run headers: CPU, cores, BLAS and its core type, torch, malloc, GPU."""

    def get(section: str, key: str) -> object:
        value = facts.get(section)
        return value.get(key) if isinstance(value, dict) else None

    parts = [str(get("cpu", "model") or "unknown CPU")]
    if cores := get("cpu", "usable_cores"):
        parts.append(f"{cores} cores")
    if get("numpy", "blas"):
        blas = ", ".join(str(b) for b in (get("numpy", "blas"), get("numpy", "blas_coretype")) if b)
        parts.append(f"numpy {get('numpy', 'version')} ({blas})")
    if get("torch", "version"):
        parts.append(f"torch {get('torch', 'version')}")
    if malloc := str(get("allocator", "name") or ""):
        parts.append(malloc if "malloc" in malloc else f"{malloc} malloc")
    devices = get("cuda", "devices")
    if isinstance(devices, list) and devices:
        names = sorted({str(d.get("name")) for d in devices if isinstance(d, dict)})
        parts.append(f"{len(devices)}x {', '.join(names)}")
    return " · ".join(parts)
