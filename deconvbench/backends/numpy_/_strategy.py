"""The base of the numpy strategies: each is a pair of pure functions on host arrays.

Preparation has nothing to do for numpy (the data is already in host memory, in the standard
layout), so the timed call is the whole algorithm from NC(D)(H)W in to NC(D)(H)W out, weight
re-layout included, as a user calling it in a training step would pay.
"""

from __future__ import annotations

from collections.abc import Callable

from ...problem import Pass, Problem
from ..strategy import Array, Prepared, Strategy, numpy_fetch

Forward = Callable[[Problem, Array, Array, Array | None], Array]
Backward = Callable[[Problem, Array, Array, Array], tuple[Array, Array, Array | None]]
Workspace = Callable[[Problem, Pass], int]


class NumpyStrategy(Strategy):
    """Subclasses name their algorithm and set ``forward_fn``/``backward_fn`` (staticmethods),
    and ``workspace_fn``: the elements a call holds at its peak (results included)."""

    backend = "numpy"
    forward_fn: Forward
    backward_fn: Backward
    workspace_fn: Workspace

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        # numpy strategies allocate nothing in preparation: the call's peak is all
        return self.workspace_fn(problem, pass_) * problem.itemsize

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        forward = self.forward_fn
        return Prepared(lambda: forward(problem, x, weight, bias), numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        backward = self.backward_fn
        return Prepared(lambda: backward(problem, grad_output, x, weight), numpy_fetch)
