"""Runners: one strategy bound to one problem, called on tensors.

A strategy's own interface (``prepare_*``, ``call``, ``fetch``) takes numpy arrays and is
built for timing: preparation moves data and may compile. A layer is called with tensors,
once per step, so each built-in backend gets the cheapest path there is:

* ``torch-*/native`` and its variants (:class:`TorchNative`): ``native.forward`` and
  ``native.backward`` on the tensors themselves. ``native-channels-last`` converts x, the
  weight and grad_output to channels-last first (each conversion is a copy, counted by
  ``*_copies``; a tensor already channels-last is used as it is) and returns a channels-last
  result.
* ``torch-*/zero-insert``, ``gemm-col2im``, ``subpixel``, ``subpixel-fused``
  (:class:`TorchOps`): the strategy's ``forward`` on the tensors. Backward: the strategy's
  ``explicit_backward`` when it has one (gemm-col2im, both sub-pixel forms), else autograd
  over its forward (zero-insert): in either case what was measured. When one of them runs both
  passes the layer calls its forward under autograd and keeps that graph
  (:attr:`Runner.graph`); when it runs only the backward, its forward is run again inside
  the backward to rebuild the graph, a cost the plan's backward time does not include (the
  dispatcher keeps such a backward only when it pays: ``dispatch.rebuild_checked``).
* ``torch-*/compiled`` (:class:`TorchCompiled`): ``torch.compile`` of the native forward
  and backward, once per problem (the first call compiles, seconds), reused after.
* numpy, numba and third-party strategies: :mod:`.hosted`.

Runners are made once per (plan, problem) and cached with the route; a call does no
lookups.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch

from ..backends.strategy import Strategy
from ..backends.torch_ import native
from ..backends.torch_._common import cuda_numerics
from ..backends.torch_._strategy import AutogradStrategy, Grads, TorchStrategy
from ..backends.torch_.compiled import Compiled, own_code
from ..problem import Problem


class Runner(ABC):
    """One strategy for one problem, on tensors of the problem's shapes, dtype and device."""

    graph: bool = False
    """Whether :meth:`forward` run under autograd records this strategy's own backward (so
    a layer whose two passes both use it needs no autograd Function)."""

    def __init__(self, strategy: Strategy, problem: Problem) -> None:
        self.strategy = strategy
        self.problem = problem

    @property
    def name(self) -> str:
        return self.strategy.name

    def forward_copies(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> int:
        """Bytes :meth:`forward` copies before the strategy sees its operands."""
        return 0

    def backward_copies(
        self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
    ) -> int:
        """Bytes :meth:`backward` copies before the strategy sees its operands."""
        return 0

    @abstractmethod
    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """``conv_transpose(x, weight, bias)``, a new tensor."""

    @abstractmethod
    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        """All three gradients (grad_bias only when the problem has a bias)."""


class _TorchRunner(Runner):
    """A torch strategy: its CUDA calls run under the numerics it was measured with (TF32
    off, cuDNN benchmark as the strategy says); CPU calls need no flag."""

    benchmark = False

    def __init__(self, strategy: TorchStrategy, problem: Problem) -> None:
        super().__init__(strategy, problem)
        self._cuda = strategy.torch_device.kind == "cuda"

    def numerics(self) -> Any:
        return cuda_numerics(self.benchmark) if self._cuda else nullcontext()


class TorchNative(_TorchRunner):
    """``native``, ``native-channels-last``, ``native-cudnn-benchmark``."""

    def __init__(self, strategy: native.Native, problem: Problem) -> None:
        super().__init__(strategy, problem)
        self.benchmark = strategy.benchmark
        self.format = strategy.memory_format.get(problem.ndim, torch.contiguous_format)
        self._convert = self.format != torch.contiguous_format

    def _layout(self, t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=self.format) if self._convert else t

    def _copies(self, *tensors: torch.Tensor) -> int:
        if not self._convert:
            return 0
        return sum(
            t.numel() * t.element_size()
            for t in tensors
            if not t.is_contiguous(memory_format=self.format)
        )

    def forward_copies(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> int:
        return self._copies(x, weight)

    def backward_copies(
        self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
    ) -> int:
        return self._copies(grad_output, x, weight)

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        with self.numerics():
            return native.forward(self.problem, self._layout(x), self._layout(weight), bias)

    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        go, xl, wl = self._layout(grad_output), self._layout(x), self._layout(weight)
        with self.numerics():
            return native.backward(self.problem, go, xl, wl)



class TorchOps(_TorchRunner):
    """A forward written in torch ops (``AutogradStrategy``); see the module docstring."""

    def __init__(self, strategy: AutogradStrategy, problem: Problem) -> None:
        super().__init__(strategy, problem)
        self._strategy = strategy
        self._explicit = strategy.explicit_backward  # the backward that was measured
        self.graph = self._explicit is None

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        with self.numerics():
            return self._strategy.forward(self.problem, x, weight, bias)

    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        problem = self.problem
        if self._explicit is not None:
            with self.numerics():
                return self._explicit(problem, grad_output, x, weight)
        # The graph is rebuilt: x and weight as fresh leaves, the bias as zeros (its value
        # reaches no gradient; it only has to be in the graph for grad_bias).
        xd, wd = x.detach().requires_grad_(), weight.detach().requires_grad_()
        bd = (
            torch.zeros(problem.out_channels, dtype=x.dtype, device=x.device, requires_grad=True)
            if problem.bias
            else None
        )
        with torch.enable_grad(), self.numerics():
            y = self._strategy.forward(problem, xd, wd, bd)
            if not y.requires_grad:  # every tap lands in the cropped padding
                gb = torch.zeros_like(bd) if bd is not None else None
                return torch.zeros_like(x), torch.zeros_like(weight), gb
            inputs = (xd, wd) if bd is None else (xd, wd, bd)
            grads = torch.autograd.grad(
                y, inputs, grad_output, allow_unused=True, materialize_grads=True
            )
        return grads[0], grads[1], grads[2] if bd is not None else None


class TorchCompiled(_TorchRunner):
    """``compiled``: the native passes under ``torch.compile`` (fullgraph, static shapes),
    compiled on first use, each with a code object of its own (so this problem's graph
    never counts against another's recompile limit)."""

    def __init__(self, strategy: Compiled, problem: Problem) -> None:
        super().__init__(strategy, problem)
        self._forward: Callable[..., torch.Tensor] | None = None
        self._backward: Callable[..., Grads] | None = None

    def _compile(self, fn: Callable[..., Any]) -> Any:
        return torch.compile(own_code(fn), fullgraph=True, dynamic=False)

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self._forward is None:
            problem = self.problem

            def compiled_forward(
                x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
            ) -> torch.Tensor:
                return native.forward(problem, x, weight, bias)

            self._forward = self._compile(compiled_forward)
        with self.numerics():
            return self._forward(x, weight, bias)

    def backward(self, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> Grads:
        if self._backward is None:
            problem = self.problem

            def compiled_backward(
                grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
            ) -> Grads:
                return native.backward(problem, grad_output, x, weight)

            self._backward = self._compile(compiled_backward)
        with self.numerics():
            return self._backward(grad_output, x, weight)


def torch_runner(strategy: TorchStrategy, problem: Problem) -> Runner | str:
    """The runner of a torch strategy, or why it has none."""
    if isinstance(strategy, Compiled):
        return TorchCompiled(strategy, problem)
    if isinstance(strategy, native.Native):
        return TorchNative(strategy, problem)
    if isinstance(strategy, AutogradStrategy):
        return TorchOps(strategy, problem)
    return f"{strategy.name}: a torch strategy the drop-in layer has no tensor path for"
