"""From a call's tensors to what runs: the plan's entries, resolved once per shape.

One :class:`Dispatcher` per plan (and ``force``), shared by every layer that runs the plan.
A call hands it its tensors and the layer's configuration; :meth:`Dispatcher.route` answers
with a :class:`Route` from a dict keyed by shapes, dtype, device and configuration, so the
cost of a call that has been seen before is building that key and one dict lookup (about
1 µs). The first call of a shape builds the :class:`~deconvbench.problem.Problem`, looks
up its forward and backward entries and resolves each to a runner, or to torch's native
op with the reason why:

* no entry, or the entry keeps the native strategy;
* a dtype or device no problem has (``Problem`` takes float16/bfloat16/float32/float64;
  devices ``cpu`` and ``cuda``), or a shape ``Problem`` refuses;
* the strategy is not registered, is unavailable here, is for another device, refuses the
  problem (``unsupported_reason``), or has no runner (:mod:`.runners`, :mod:`.hosted`).

The plan's fingerprint is checked on the first call and again whenever torch's thread count
changes: when it differs from this machine's (:func:`~deconvbench.env.fingerprint.differences`)
the dispatcher warns once, with :class:`PlanMismatchWarning` naming the differences, and
routes everything to native, unless it was made with ``force=True``.
"""

from __future__ import annotations

import itertools
import sys
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import registry
from ..backends.strategy import Strategy
from ..env.fingerprint import current, differences, for_backends
from ..errors import ProblemError, Unavailable
from ..problem import Pass, Problem
from ..results.plan_file import Plan, PlanEntry
from .hosted import host_runner
from .runners import Runner, torch_runner
from .tensors import TORCH_DTYPE_NAMES, copy_budget

Key = tuple[Any, ...]
"""What a call is looked up by (:func:`route_key`)."""

DEVICES = ("cpu", "cuda")


class PlanMismatchWarning(UserWarning):
    """The plan was measured on another machine, thread count or library versions."""


@dataclass
class Side:
    """One pass of one route: the runner, or None for torch's native op, and why."""

    runner: Runner | None
    reason: str
    budget: float = 0.0
    """Bytes of copies the measured win pays for (:func:`.tensors.copy_budget`)."""
    speedup: float = 1.0

    @property
    def name(self) -> str:
        return "native" if self.runner is None else self.runner.name


@dataclass
class Route:
    """What runs for one problem: forward and backward, each a :class:`Side`."""

    problem: Problem | None
    forward: Side
    backward: Side
    graph: bool = field(init=False)
    """Both passes run one strategy whose forward records its own backward under
    autograd: the layer calls that forward directly, no autograd Function."""

    def __post_init__(self) -> None:
        f, b = self.forward.runner, self.backward.runner
        self.graph = f is not None and f is b and f.graph

    @property
    def native(self) -> bool:
        return self.forward.runner is None and self.backward.runner is None

    def describe(self) -> str:
        what = "?" if self.problem is None else str(self.problem)
        return (
            f"{what}: forward {self.forward.name} ({self.forward.reason}); "
            f"backward {self.backward.name} ({self.backward.reason})"
        )


_INSIDE = (str(Path(__file__).parents[1]), str(Path(torch.__file__).parent))
"""Code a warning should not point at: deconvbench's and torch's (module call machinery)."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside deconvbench
    and torch: the user's line that called the model."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    return level


def native_route(reason: str, problem: Problem | None = None) -> Route:
    return Route(problem, Side(None, reason), Side(None, reason))


def route_key(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    config: tuple[Any, ...],
) -> Key:
    """Shapes, dtype, device and configuration: everything a problem is made of."""
    return (x.shape, x.dtype, x.device.type, weight.shape, weight.dtype, bias is None, config)


def make_problem(
    x: torch.Tensor, weight: torch.Tensor, has_bias: bool, config: tuple[Any, ...]
) -> Problem | str:
    """The problem of a call, or why there is none. ``config`` is ``(stride, padding,
    output_padding, dilation, groups)``."""
    dtype = TORCH_DTYPE_NAMES.get(x.dtype)
    if dtype is None:
        return f"dtype {x.dtype} is not one a plan covers"
    if weight.dtype != x.dtype:
        return f"weight dtype {weight.dtype} differs from the input's {x.dtype}"
    if x.device.type not in DEVICES:
        return f"device {x.device.type} is not one a plan covers"
    stride, padding, output_padding, dilation, groups = config
    try:
        return Problem.from_shapes(
            x.shape,
            weight.shape,
            stride=tuple(stride),
            padding=tuple(padding),
            output_padding=tuple(output_padding),
            dilation=tuple(dilation),
            groups=groups,
            bias=has_bias,
            dtype=dtype,
        )
    except ProblemError as e:
        return f"not a problem deconvbench takes: {e}"


_strategies: dict[str, Strategy | str] = {}


def strategy(name: str) -> Strategy | str:
    """The registered strategy ``name`` (looked up once per process), or why none runs."""
    found = _strategies.get(name)
    if found is None:
        try:
            found = _strategies[name] = registry.get(name)
        except Unavailable as e:
            found = _strategies[name] = str(e)
    if isinstance(found, str):
        return found
    reason = found.unavailable_reason()  # cheap by contract, and asked once per route
    return found if reason is None else f"{name} is unavailable here: {reason}"


def _runner(
    entry: PlanEntry | None, problem: Problem, device: str, pass_: Pass, runners: dict[str, Runner]
) -> Side:
    if entry is None:
        return Side(None, f"the plan has no {pass_} entry for this problem")
    if not entry.replaces_native:
        return Side(None, f"the plan keeps {entry.native}")
    found = strategy(entry.strategy)
    if isinstance(found, str):
        return Side(None, found)
    if found.device != device:
        return Side(None, f"{entry.strategy} runs on {found.device}, the tensors are on {device}")
    reason = found.unsupported_reason(problem, pass_)
    if reason is not None:
        return Side(None, reason)
    runner = runners.get(found.name)
    if runner is None:
        made = _make_runner(found, problem)
        if isinstance(made, str):
            return Side(None, made)
        runner = runners[found.name] = made
    budget = copy_budget(entry.native_ms, entry.strategy_ms)
    return Side(runner, f"plan: {entry.speedup:.3g}x {entry.native}", budget, entry.speedup)


def _make_runner(found: Strategy, problem: Problem) -> Runner | str:
    from ..backends.torch_._strategy import TorchStrategy

    if isinstance(found, TorchStrategy):
        return torch_runner(found, problem)
    return host_runner(found, problem)


_serial = itertools.count(1)
_live: weakref.WeakValueDictionary[int, Dispatcher] = weakref.WeakValueDictionary()
_by_plan: weakref.WeakValueDictionary[tuple[int, bool], Dispatcher] = weakref.WeakValueDictionary()


class Dispatcher:
    """Routes the calls of every layer that runs one plan (see the module docstring)."""

    def __init__(self, plan: Plan, force: bool = False) -> None:
        self.plan = plan
        self.force = force
        self.id = next(_serial)
        self.routes: dict[Key, Route] = {}
        self.differences: list[str] = []
        self._threads = -1  # torch's thread count the fingerprint was last checked at
        self._usable = False
        self._warned = False
        _live[self.id] = self

    def __repr__(self) -> str:
        return f"Dispatcher(id={self.id}, entries={len(self.plan.entries)}, force={self.force})"

    def __deepcopy__(self, memo: dict[int, object]) -> Dispatcher:
        return self  # the plan is immutable and the routes are shared by design

    def __reduce__(self) -> tuple[Any, ...]:
        return (dispatcher_for, (self.plan, self.force))

    def _check(self) -> None:
        threads = torch.get_num_threads()
        here = for_backends(current(threads), self.plan.backends)
        self.differences = differences(self.plan.fingerprint, here)
        self._threads = threads
        self._usable = self.force or not self.differences
        self.routes.clear()
        if self.differences and not self._warned:
            self._warned = True
            action = "using it anyway (force=True)" if self.force else "running torch's native op"
            warnings.warn(
                f"this deconvbench plan was made on a different machine or setup "
                f"({'; '.join(self.differences)}); {action}",
                PlanMismatchWarning,
                stacklevel=caller_stacklevel(),
            )

    def route(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        config: tuple[Any, ...],
    ) -> Route:
        """The route of a call; ``config`` is ``(stride, padding, output_padding, dilation,
        groups)`` as tuples and an int."""
        if torch.get_num_threads() != self._threads:
            self._check()
        key = route_key(x, weight, bias, config)
        found = self.routes.get(key)
        if found is None:
            found = self.routes[key] = self._resolve(x, weight, bias is not None, config)
        return found

    def _resolve(
        self, x: torch.Tensor, weight: torch.Tensor, has_bias: bool, config: tuple[Any, ...]
    ) -> Route:
        if not self._usable:
            return native_route("the plan's fingerprint differs from this machine's")
        problem = make_problem(x, weight, has_bias, config)
        if isinstance(problem, str):
            return native_route(problem)
        device = x.device.type
        runners: dict[str, Runner] = {}  # one runner when both passes use one strategy
        forward_entry = self.plan.lookup(problem, device, "forward")
        backward_entry = self.plan.lookup(problem, device, "backward")
        forward = _runner(forward_entry, problem, device, "forward", runners)
        backward = _runner(backward_entry, problem, device, "backward", runners)
        return Route(problem, forward, rebuild_checked(backward, forward, backward_entry,
                                                       forward_entry))  # fmt: skip


def rebuild_checked(
    backward: Side, forward: Side, entry: PlanEntry | None, forward_entry: PlanEntry | None
) -> Side:
    """``backward``, or native when its strategy must rebuild its graph and that costs more
    than the plan says it saves.

    A strategy whose backward is autograd over its own forward (``Runner.graph``) was timed
    with its graph already built. When the forward pass ran another strategy, the backward
    runs this one's forward again: the entry's ``forward_ms`` (its forward, measured in the
    same case), else, for plans without it, native's forward (the forward entry's).
    """
    runner = backward.runner
    if runner is None or not runner.graph or runner is forward.runner or entry is None:
        return backward
    forward_ms = entry.forward_ms
    if forward_ms is None and forward_entry is not None:
        forward_ms = forward_entry.native_ms
    if forward_ms is None:
        return Side(None, f"{runner.name} would rebuild its graph, at a cost the plan lacks")
    rebuilt_ms = entry.strategy_ms + forward_ms
    if rebuilt_ms < entry.native_ms:
        return backward
    return Side(
        None,
        f"{runner.name} reruns its forward inside the backward: about {rebuilt_ms:.3g} ms "
        f"against {entry.native} {entry.native_ms:.3g} ms",
    )


def dispatcher_for(plan: Plan, force: bool = False) -> Dispatcher:
    """The dispatcher of ``plan`` (made once per plan object and ``force``)."""
    found = _by_plan.get((id(plan), force))
    if found is None or found.plan is not plan:
        found = _by_plan[(id(plan), force)] = Dispatcher(plan, force)
    return found


def live(dispatcher_id: int) -> Dispatcher | None:
    """The dispatcher with this id, if any layer still holds it (the custom op's lookup)."""
    return _live.get(dispatcher_id)
