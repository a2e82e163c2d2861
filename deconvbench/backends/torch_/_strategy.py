"""The base of every torch strategy: one device, inputs moved in preparation.

Two shapes of strategy live on it:

* :class:`TorchStrategy` subclasses write both passes themselves (``native`` uses torch's
  own convolution backward; ``compiled`` compiles both).
* :class:`AutogradStrategy` subclasses write only a forward in torch ops; their backward is
  autograd over that forward's graph. Preparation runs the forward (with the graph kept),
  and the timed call is ``torch.autograd.grad(y, inputs, grad_output, retain_graph=True)``:
  the backward of the strategy's own algorithm, timed alone, and repeatable because the
  graph is retained and ``autograd.grad`` returns fresh gradients instead of accumulating
  into ``.grad``. A subclass may override ``prepare_backward`` with explicit formulas
  (``subpixel`` does, where autograd's way of assembling gradients is the bottleneck).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable

import torch

from ...problem import Pass, Problem
from ..strategy import Array, Capabilities, Prepared, Strategy
from ._common import ALL_DTYPES, Device, fetch, library_allowance, slow_path_columns


class TorchStrategy(Strategy):
    """A strategy bound to one torch device; backend name ``torch-cpu`` or ``torch-cuda``."""

    algorithm: str
    dims: frozenset[int] = frozenset({1, 2, 3})

    def __init__(self, device: Device) -> None:
        self.torch_device = device
        self.backend = device.backend
        self.capabilities = Capabilities(dims=self.dims, dtypes=ALL_DTYPES, device=device.kind)

    def unavailable_reason(self) -> str | None:
        return self.torch_device.unavailable_reason()

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The operands' device copies, the results, and :func:`library_allowance` for
        the one library call a ``native`` or ``compiled`` pass is: what oneDNN or cuDNN
        allocate inside it is unknown, so this is a modest allowance, not an account.
        Off oneDNN (CPU, not float32), torch's transposed convolution holds columns of
        ``Cout·∏K·∏I`` per sample: the whole batch's forward, two samples' backward
        (measured)."""
        operands, results = problem.input_elements(pass_), problem.result_elements(pass_)
        cols = problem.out_channels * math.prod(problem.kernel) * math.prod(problem.input)
        cols *= problem.batch if pass_ == "forward" else 2
        library = library_allowance(operands, results)
        library += slow_path_columns(self.torch_device, problem, cols)
        return (operands + results + library) * problem.itemsize

    def inputs(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        dev = self.torch_device
        return (
            dev.tensor(x, problem.dtype),
            dev.tensor(weight, problem.dtype),
            None if bias is None else dev.tensor(bias, problem.dtype),
        )


Grads = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
"""``(grad_input, grad_weight, grad_bias)``; grad_bias is None when the problem has no bias."""
Backward = Callable[[Problem, torch.Tensor, torch.Tensor, torch.Tensor], Grads]


class AutogradStrategy(TorchStrategy):
    """A forward written in torch ops; its backward autograd over it, unless the strategy
    names an ``explicit_backward`` (its gradients written out in torch ops)."""

    explicit_backward: Backward | None = None
    """``backward(problem, grad_output, x, weight)``, a staticmethod; None: autograd."""

    @abstractmethod
    def forward(
        self, problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """``conv_transpose(x, weight, bias)`` by this strategy's algorithm."""

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        xt, wt, bt = self.inputs(problem, x, weight, bias)
        dev = self.torch_device

        def call() -> torch.Tensor:
            return self.forward(problem, xt, wt, bt)

        return Prepared(dev.timed(call), fetch, dev.synchronize)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        dev = self.torch_device
        explicit = self.explicit_backward
        if explicit is not None:
            go, xw, ww = (dev.tensor(a, problem.dtype) for a in (grad_output, x, weight))

            def explicit_call() -> Grads:
                return explicit(problem, go, xw, ww)

            return Prepared(dev.timed(explicit_call), fetch, dev.synchronize)
        xt = dev.tensor(x, problem.dtype, requires_grad=True)
        wt = dev.tensor(weight, problem.dtype, requires_grad=True)
        # The bias's value does not enter any gradient; it only has to be in the graph.
        bt = (
            dev.zeros((problem.out_channels,), problem.dtype, requires_grad=True)
            if problem.bias
            else None
        )
        go = dev.tensor(grad_output, problem.dtype)
        with torch.enable_grad(), dev.numerics():
            y = self.forward(problem, xt, wt, bt)
        inputs = (xt, wt) if bt is None else (xt, wt, bt)
        if not y.requires_grad:
            # Every tap lands in the cropped padding: the output is constant, all grads zero.
            def zeros() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
                return torch.zeros_like(xt), torch.zeros_like(wt), None

            return Prepared(zeros, fetch, dev.synchronize)

        def call() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
            # allow_unused: an input can drop out of the graph (no tap reaches any output)
            grads = torch.autograd.grad(
                y, inputs, go, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            return grads[0], grads[1], grads[2] if bt is not None else None

        return Prepared(dev.timed(call), fetch, dev.synchronize)
