"""Strategy discovery through the entry-point group ``deconvbench.backends``.

Every backend, built-in or third-party, is an entry point naming a callable that returns
the backend's strategies (``StrategyFactory``). The built-ins are declared in this
package's own ``pyproject.toml`` exactly as a plugin would declare them (the pluggy way).

A backend whose import or factory fails never breaks the tool: it is listed as one
unavailable placeholder, ``<entry point>/*``, carrying the error as its reason.

Built-ins always win, and nothing is replaced or dropped silently. The built-in entry points
load first; a strategy that a plugin returns is refused (listed in its entry point's
placeholder, with the reason, and not registered) when it

- declares a built-in backend's name (``numpy/direct`` from a plugin never replaces ours);
- declares a backend other than its entry point's name (a plugin's strategies are
  ``<entry point>/<algorithm>``, so ``--impl 'mybackend/*'`` finds all of them);
- shares its name with another strategy of the same entry point (neither is registered:
  which one was meant is unknowable);
- has a name that an earlier entry point (another distribution) already registered.

Trust model: only installed distributions' entry points are loaded; nothing is imported
from suite files, result files or the command line.
"""

from __future__ import annotations

import fnmatch
import importlib
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

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
    """Stands in for a backend whose entry point failed to load, or for the strategies of
    an entry point that were refused; ``details`` keeps the traceback of a failed load."""

    def __init__(self, entry_point: str, reason: str, details: str = "") -> None:
        self.backend = entry_point
        self.algorithm = "*"
        self.reason = reason
        self.details = details

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
            for attribute in ("backend", "algorithm"):
                field = getattr(s, attribute, None)
                if not isinstance(field, str) or not field or "/" in field:
                    raise TypeError(
                        f"{value} returned a {type(s).__name__} whose {attribute} is {field!r}"
                        " (expected a non-empty name without '/')"
                    )
        return strategies
    except Exception as exc:  # a broken plugin is reported, never fatal
        reason = f"backend {name!r} failed to load ({value}): {type(exc).__name__}: {exc}"
        return [BrokenBackend(name, reason, traceback.format_exc())]


@dataclass(frozen=True)
class Source:
    """One entry point of the group: its name, its ``module:function``, its distribution."""

    name: str
    value: str
    distribution: str | None = None

    @property
    def builtin(self) -> bool:
        return BUILTIN_BACKENDS.get(self.name) == self.value

    @property
    def label(self) -> str:
        dist = f"plugin {self.distribution!r}" if self.distribution else "a plugin"
        return f"{dist} (entry point {self.name} = {self.value})"


def _entry_points() -> list[Source]:
    """Every entry point of the group, the built-ins first (declared or not), each once."""
    sources: list[Source] = []
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else None
        sources.append(Source(ep.name, ep.value, dist))
    # Running from an uninstalled source tree: register the built-ins the same way.
    sources += [Source(n, v, "deconvbench") for n, v in BUILTIN_BACKENDS.items()]
    unique: dict[tuple[str, str], Source] = {}
    for source in sources:
        unique.setdefault((source.name, source.value), source)
    return sorted(unique.values(), key=lambda s: not s.builtin)  # stable: built-ins first


def _refusal(
    source: Source, strategy: Strategy, counts: Counter[str], owners: dict[str, Source]
) -> str | None:
    """Why a loaded strategy must not be registered (None when it may be)."""
    name = strategy.name
    if strategy.backend in BUILTIN_BACKENDS and not source.builtin:
        return (
            f"{name} ({type(strategy).__name__}) declares the built-in backend"
            f" {strategy.backend!r}; built-in strategies are never replaced"
        )
    if strategy.backend != source.name:
        return (
            f"{name} ({type(strategy).__name__}) declares backend {strategy.backend!r}, but its"
            f" entry point is named {source.name!r}; a plugin's strategies are named"
            f" {source.name}/<algorithm>"
        )
    if counts[name] > 1:
        return f"{name} is returned {counts[name]} times; none of them is registered"
    if name in owners:
        return f"{name} is already registered by {owners[name].label}"
    return None


@cache
def strategies() -> tuple[Strategy, ...]:
    """Every registered strategy, available or not, sorted by name; loaded once.

    A refused strategy (see the module's docstring) is not registered; its entry point's
    placeholder, ``<entry point>/*``, lists why.
    """
    loaded: dict[str, Strategy] = {}
    owners: dict[str, Source] = {}
    for source in _entry_points():
        got = _load_entry_point(source.name, source.value)
        refused: list[str] = []
        if len(got) == 1 and isinstance(got[0], BrokenBackend):
            refused.append(got[0].reason)
            details = got[0].details
        else:
            details = ""
            counts = Counter(s.name for s in got)
            for strategy in got:
                reason = _refusal(source, strategy, counts, owners)
                if reason is None:
                    loaded[strategy.name] = strategy
                    owners[strategy.name] = source
                else:
                    refused.append(reason)
            if refused:
                refused = [f"{source.label}: refused " + "; ".join(dict.fromkeys(refused))]
        if not refused:
            continue
        placeholder = f"{source.name}/*"
        earlier = loaded.get(placeholder)
        if isinstance(earlier, BrokenBackend):  # two distributions' entry points of one name
            refused.insert(0, earlier.reason)
            details = earlier.details + details
        loaded[placeholder] = BrokenBackend(source.name, "; ".join(refused), details)
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
