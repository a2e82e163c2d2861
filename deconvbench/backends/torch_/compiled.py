"""``compiled``: ``torch.compile`` of the native forward and of the native backward.

Everything costly happens in preparation: the function is compiled (``fullgraph=True``,
static shapes) and called twice, the first call compiling, the second proving that the
guards pass so no timed call ever compiles. Inductor lowers the convolution itself to an
extern call of the same aten kernel ``native`` uses; what compilation can change is the
code around it (bias, layout, allocation) and the per-call overhead (guards).

Dynamo keeps its compiled graphs on the Python *code object* and recompiles at most
``recompile_limit`` (8) times per code object before silently falling back to eager: a
benchmark over more than eight shapes would time eager code and call it compiled. So each
(problem, pass) gets a function with a code object of its own, whose cache then holds
exactly one graph. The function is kept for the life of the process, as a program keeps its
compiled model: a later round, or ``verify`` then ``run`` in one process, prepares the same
problem again without compiling again (compiling took 4 of a warm smoke run's 40 s).

The guards cover global state such as grad mode and the number of threads: prepare and
time under the same settings (the harness sets threads before preparing).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from ...errors import Unavailable
from ...problem import Problem
from ..strategy import Array, Prepared
from ._common import CONV_TRANSPOSE, Device, fetch
from ._strategy import TorchStrategy

Fn = TypeVar("Fn", bound=Callable[..., Any])

_serial = itertools.count()
_compiled: dict[tuple[str, str, str], Callable[..., Any]] = {}
"""(strategy, problem spec, pass) → its compiled function, for the process's life."""


def cxx_compiler() -> str:
    """The C++ compiler inductor's CPU backend will look for ($CXX, else g++/clang++)."""
    return os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")


def compile_unavailable_reason(device: Device) -> str | None:
    """Why torch.compile cannot work here; cheap: looks at PATH and packages, compiles nothing."""
    reason = device.unavailable_reason()
    if reason is not None:
        return reason
    if device.kind == "cpu":
        cxx = cxx_compiler()
        if shutil.which(cxx) is None:
            return (
                f"torch.compile on CPU needs a C++ compiler, and {cxx!r} (from $CXX or "
                "inductor's default) is not on PATH; install g++ or set CXX"
            )
    elif importlib.util.find_spec("triton") is None:
        return "torch.compile on CUDA needs triton, which is not installed (pip install triton)"
    return None


def own_code(fn: Fn) -> Fn:
    """A copy of ``fn`` with a code object of its own, so its dynamo cache is its own."""
    code = fn.__code__
    code = code.replace(co_name=f"{code.co_name}_{next(_serial)}")
    copy = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    return copy  # type: ignore[return-value]


def _forward_fn(problem: Problem) -> Callable[..., torch.Tensor]:
    # Plain ints and tuples in the closure: dynamo guards them as constants, cheaply.
    conv = CONV_TRANSPOSE[problem.ndim]
    stride, padding, output_padding = problem.stride, problem.padding, problem.output_padding
    groups, dilation = problem.groups, problem.dilation

    def native_forward(
        x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return conv(x, weight, bias, stride, padding, output_padding, groups, dilation)

    return native_forward


def _backward_fn(problem: Problem) -> Callable[..., tuple[torch.Tensor, ...]]:
    bias_sizes = [problem.out_channels] if problem.bias else None
    stride, padding = list(problem.stride), list(problem.padding)
    dilation, output_padding = list(problem.dilation), list(problem.output_padding)
    groups, mask = problem.groups, [True, True, problem.bias]

    def native_backward(
        grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return torch.ops.aten.convolution_backward(  # type: ignore[no-any-return]
            grad_output,
            x,
            weight,
            bias_sizes,
            stride,
            padding,
            dilation,
            True,
            output_padding,
            groups,
            mask,
        )

    return native_backward


class Compiled(TorchStrategy):
    algorithm = "compiled"
    description = "torch.compile (inductor) of native forward and backward, compiled in prepare"

    def unavailable_reason(self) -> str | None:
        return compile_unavailable_reason(self.torch_device)

    def _compile(self, problem: Problem, pass_: str, make: Callable[[Problem], Fn]) -> Fn:
        """The compiled function of ``problem``'s pass: made on first use, then reused."""
        key = (self.name, problem.spec(), pass_)
        found = _compiled.get(key)
        if found is None:
            if not torch._dynamo.eval_frame.is_dynamo_supported():
                raise Unavailable(
                    f"{self.name}: torch.compile does not support this Python "
                    f"({sys.version.split()[0]}) with torch {torch.__version__}"
                )
            fn = own_code(make(problem))
            found = _compiled[key] = torch.compile(fn, fullgraph=True, dynamic=False)
        return found  # type: ignore[return-value]

    def _ready(self, call: Callable[[], object]) -> Prepared:
        """Compile (first call) and check that the guards pass (second call), untimed."""
        dev = self.torch_device
        with dev.numerics():
            call()
            call()
        dev.synchronize()
        return Prepared(dev.timed(call), fetch, dev.synchronize)

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        xt, wt, bt = self.inputs(problem, x, weight, bias)
        compiled = self._compile(problem, "forward", _forward_fn)
        return self._ready(lambda: compiled(xt, wt, bt))

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        dev = self.torch_device
        go = dev.tensor(grad_output, problem.dtype)
        xt, wt = dev.tensor(x, problem.dtype), dev.tensor(weight, problem.dtype)
        compiled = self._compile(problem, "backward", _backward_fn)
        has_bias = problem.bias

        def call() -> tuple[torch.Tensor | None, ...]:
            gx, gw, gb = compiled(go, xt, wt)
            return gx, gw, gb if has_bias else None

        return self._ready(call)
