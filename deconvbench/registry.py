"""Strategy discovery through the entry-point group ``deconvbench.backends``.

Every backend, built-in or third-party, is an entry point naming a callable that returns
the backend's strategies (``StrategyFactory``). The built-ins are declared in this
package's own ``pyproject.toml`` exactly as a plugin would declare them (the pluggy way).

A backend whose import or factory fails never breaks the tool: it is listed as one
unavailable placeholder, ``<entry point>/*``, carrying the error as its reason.

Trust model: only installed distributions' entry points are loaded; nothing is imported
from suite files, result files or the command line.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .backends.strategy import Prepared, Strategy
from .errors import Unavailable
from .problem import Problem

GROUP = "deconvbench.backends"

BUILTIN_BACKENDS: dict[str, str] = {
    "numpy": "deconvbench.backends.numpy_:strategies",
    "torch-cpu": "deconvbench.backends.torch_:cpu_strategies",
    "torch-cuda": "deconvbench.backends.torch_:cuda_strategies",
    "numba": "deconvbench.backends.numba_:strategies",
    "onnxruntime": "deconvbench.backends.onnxruntime_:strategies",
    "jax": "deconvbench.backends.jax_:strategies",
    "openvino": "deconvbench.backends.openvino_:strategies",
}
"""The built-in entry points, as in pyproject.toml (a test keeps the two equal).

Used only when deconvbench runs from a source tree that was never installed, where no
entry point metadata exists.
"""


class BrokenBackend(Strategy):
    """Stands in for a backend whose entry point failed to load."""

    def __init__(self, entry_point: str, reason: str) -> None:
        self.backend = entry_point
        self.algorithm = "*"
        self.reason = reason

    def unavailable_reason(self) -> str | None:
        return self.reason

    def prepare_forward(self, *args: object, **kwargs: object) -> Prepared:
        raise Unavailable(f"{self.name}: {self.reason}")

    prepare_backward = prepare_forward


@dataclass(frozen=True)
class Implementation:
    """One row of ``deconvbench list`` / ``db.implementations()``."""

    name: str
    backend: str
    algorithm: str
    device: str
    available: bool
    reason: str
    capabilities: dict[str, object]
    description: str


def _load_entry_point(name: str, value: str) -> list[Strategy]:
    """Load one backend; any failure becomes an unavailable placeholder."""
    try:
        module_name, _, attr = value.partition(":")
        factory = getattr(importlib.import_module(module_name), attr) if attr else None
        if factory is None:
            raise TypeError(f"entry point {value!r} names no callable (expected 'module:function')")
        strategies = list(factory())
        for s in strategies:
            if not isinstance(s, Strategy):
                raise TypeError(f"{value} returned {type(s).__name__}, not a Strategy")
        return strategies
    except Exception as exc:  # a broken plugin is reported, never fatal
        reason = f"backend {name!r} failed to load ({value}): {type(exc).__name__}: {exc}"
        return [BrokenBackend(name, reason)]


def _entry_points() -> list[tuple[str, str]]:
    found: list[EntryPoint] = list(entry_points(group=GROUP))
    pairs = [(ep.name, ep.value) for ep in found]
    values = {value for _, value in pairs}
    # Running from an uninstalled source tree: register the built-ins the same way.
    pairs += [(n, v) for n, v in BUILTIN_BACKENDS.items() if v not in values]
    return pairs


@cache
def strategies() -> tuple[Strategy, ...]:
    """Every registered strategy, available or not, sorted by name; loaded once."""
    loaded: dict[str, Strategy] = {}
    for name, value in _entry_points():
        for strategy in _load_entry_point(name, value):
            loaded.setdefault(strategy.name, strategy)  # first registration wins
    return tuple(sorted(loaded.values(), key=lambda s: s.name))


def reload() -> tuple[Strategy, ...]:
    """Forget the cached discovery (after installing a plugin, or in tests)."""
    strategies.cache_clear()
    return strategies()


def get(name: str) -> Strategy:
    """The strategy called ``name``; :class:`Unavailable` names close matches otherwise."""
    for strategy in strategies():
        if strategy.name == name:
            return strategy
    known = [s.name for s in strategies()]
    import difflib

    close = difflib.get_close_matches(name, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise Unavailable(f"no strategy named {name!r}{hint}; `deconvbench list` shows them all")


def select(patterns: Iterable[str]) -> list[Strategy]:
    """Strategies whose names match any shell-style glob, in registry order."""
    pats = list(patterns)
    return [s for s in strategies() if any(fnmatch.fnmatchcase(s.name, p) for p in pats)]


def describe(strategy: Strategy) -> Implementation:
    reason = strategy.unavailable_reason()
    return Implementation(
        name=strategy.name,
        backend=strategy.backend,
        algorithm=strategy.algorithm,
        device=strategy.capabilities.device,
        available=reason is None,
        reason=reason or "",
        capabilities=strategy.capabilities.describe(),
        description=strategy.description,
    )


def is_supported(strategy: Strategy, problem: Problem) -> bool:
    return strategy.unavailable_reason() is None and strategy.unsupported_reason(problem) is None
