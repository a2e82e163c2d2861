"""The interface every strategy implements; capabilities are data.

A strategy never times itself. The harness (or the API) asks it to *prepare* a call for
one problem: preparation does everything that must stay outside a timed region (moving
data to the device, changing layout, JIT compilation, autotuning, running the forward
whose backward will be timed) and returns a :class:`Prepared` whose ``call`` is the
work to time and whose ``fetch`` turns the call's result into numpy arrays.

Inputs handed to ``prepare_*`` are numpy arrays whose values are exactly representable
in ``problem.dtype``; for dtypes numpy lacks (bfloat16) they arrive as float32 and the
strategy casts them. Layouts are the framework's standard ones: NC(D)(H)W input and
output, ``(Cin, Cout/groups, *kernel)`` weight. A strategy's ``call`` starts from and
ends in those layouts unless its name says otherwise (``native-channels-last``).

A strategy never writes into the arrays it is handed (the harness compares them with saved
copies after the reference check and after the timing: a write is an ``error`` row). Its
``fetch`` returns a tuple with one entry per result tensor, each an array of the problem's
storage dtype (``problem.dtype``; float32 for bfloat16); any other dtype is a ``mismatch``.
Registered names are ``<entry point name>/<algorithm>``, and never a built-in's
(``deconvbench.registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..errors import Unavailable, Unsupported
from ..problem import DTYPES, Pass, Problem

Array = NDArray[np.generic]


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can take, as data (shown by ``deconvbench list``)."""

    dims: frozenset[int] = frozenset({1, 2, 3})
    dtypes: frozenset[str] = frozenset({"float32", "float64"})
    device: str = "cpu"
    backward: bool = True
    groups: bool = True
    dilation: bool = True

    def describe(self) -> dict[str, object]:
        return {
            "dims": sorted(self.dims),
            "dtypes": [d for d in DTYPES if d in self.dtypes],
            "device": self.device,
            "backward": self.backward,
            "groups": self.groups,
            "dilation": self.dilation,
        }


@dataclass(frozen=True)
class Prepared:
    """A call ready to time, and how to read its result back.

    ``call`` does exactly the work being measured and returns its result (device arrays
    may still be in flight: the backend's ``synchronize`` waits for them). ``fetch`` copies
    a result to numpy: ``(y,)`` for forward, ``(grad_input, grad_weight, grad_bias)`` for
    backward, ``grad_bias`` being ``None`` when the problem has no bias.

    ``facts`` is what the engine says about this preparation that a reader of the results
    needs: the precision it computes in, the threads it uses, how long it compiled. The row
    shows them in a note (``engine: precision=f32, threads=2, compile_s=0.031``).
    """

    call: Callable[[], object]
    fetch: Callable[[object], tuple[Array | None, ...]]
    synchronize: Callable[[], None] = field(default=lambda: None)
    facts: Mapping[str, object] = field(default_factory=dict)


class Strategy(ABC):
    """One algorithm on one backend, named ``backend/algorithm``."""

    backend: str
    algorithm: str
    capabilities: Capabilities = Capabilities()
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.algorithm}"

    @property
    def device(self) -> str:
        return self.capabilities.device

    def unavailable_reason(self) -> str | None:
        """Why this strategy cannot run on this machine (None when it can). Must be cheap."""
        return None

    def unsupported_reason(self, problem: Problem, pass_: Pass = "forward") -> str | None:
        """Why this strategy cannot take this problem (None when it can).

        The default reads the capabilities; strategies with narrower limits extend it.
        """
        caps = self.capabilities
        if problem.ndim not in caps.dims:
            dims = "/".join(f"{d}-D" for d in sorted(caps.dims))
            return f"{self.name} supports {dims} only, not {problem.ndim}-D"
        if problem.dtype not in caps.dtypes:
            return f"{self.name} does not support {problem.dtype}"
        if pass_ == "backward" and not caps.backward:
            return f"{self.name} has no backward"
        if problem.groups != 1 and not caps.groups:
            return f"{self.name} does not support groups > 1"
        if any(d != 1 for d in problem.dilation) and not caps.dilation:
            return f"{self.name} does not support dilation > 1"
        return None

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Peak bytes this strategy holds, beyond the inputs handed to it, while a call runs.

        That is what its preparation keeps (device copies, re-laid operands, a retained
        forward graph) plus the call's own peak (its results and temporaries). The memory
        guard adds it to the harness's share (``run.footprint.estimate``) before anything is
        allocated, so it must be arithmetic on the problem's shapes, cheap, and on the
        high side rather than the low. This default, for strategies that do not say better,
        is the pass's results plus one temporary of the same size.
        """
        return 2 * problem.result_elements(pass_) * problem.storage_itemsize

    def check(self, problem: Problem, pass_: Pass = "forward") -> None:
        """Raise :class:`Unavailable` or :class:`Unsupported` when this cannot run."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise Unavailable(f"{self.name}: {reason}")
        reason = self.unsupported_reason(problem, pass_)
        if reason is not None:
            raise Unsupported(reason)

    @abstractmethod
    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        """Prepare ``y = conv_transpose(x, weight, bias)``; ``fetch`` returns ``(y,)``."""

    @abstractmethod
    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        """Prepare the backward; ``fetch`` returns ``(grad_input, grad_weight, grad_bias)``.

        ``grad_bias`` is computed (and returned) only when ``problem.bias`` is true.
        """


StrategyFactory = Callable[[], Iterable[Strategy]]
"""What an entry point of the group ``deconvbench.backends`` must name."""

_run_threads: list[int] = []


def run_threads() -> int | None:
    """The thread count the run asks for (``--threads``, or every core), while a run is in
    progress; None outside one.

    Libraries with a thread pool of their own that a strategy sizes when it prepares (ONNX
    Runtime's sessions, OpenVINO's compiled models, XLA) read it here: the harness sets torch's,
    the BLAS's and numba's pools itself.
    """
    return _run_threads[-1] if _run_threads else None


def push_run_threads(count: int) -> None:
    """The harness's side of :func:`run_threads` (``harness.threads.limit_threads``)."""
    _run_threads.append(count)


def pop_run_threads() -> None:
    _run_threads.pop()


def numpy_fetch(result: object) -> tuple[Array | None, ...]:
    """``fetch`` for strategies whose call returns a tuple of numpy arrays (or None)."""
    if not isinstance(result, tuple):
        result = (result,)
    return tuple(None if r is None else np.asarray(r) for r in result)
