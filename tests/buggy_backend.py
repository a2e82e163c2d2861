"""A plugin with plausible bugs, for ``deconvbench conformance`` (not a real backend).

Loaded through an entry point (``buggy = buggy_backend:strategies``), as a kernel author's
package would be: its strategies are right on most problems and wrong on a few.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.backends.numpy_.direct import backward, forward
from deconvbench.problem import Problem


class Buggy(Strategy):
    """numpy/direct with one bug:

    - ``output-padding``: the rows ``output_padding`` adds get no taps (the forward computes
      without output_padding and pads zeros; the backward ignores those rows of grad_output);
    - ``groups``: every group uses the first group's weights;
    - ``correct``: no bug.
    """

    backend = "buggy"

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def _weight(self, problem: Problem, weight: Array) -> Array:
        if self.algorithm != "groups" or problem.groups == 1:
            return weight
        per_group = problem.in_channels // problem.groups
        return np.concatenate([weight[:per_group]] * problem.groups)

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        w = self._weight(problem, weight)
        if self.algorithm != "output-padding" or not any(problem.output_padding):
            return Prepared(lambda: forward(problem, x, w, bias), numpy_fetch)
        cropped = dataclasses.replace(problem, output_padding=(0,) * problem.ndim)

        def call() -> Array:
            y = forward(cropped, x, w, None)
            pad = [(0, 0), (0, 0), *((0, op) for op in problem.output_padding)]
            y = np.pad(y, pad)
            if bias is not None:
                y = y + bias.reshape(-1, *(1,) * problem.ndim)
            return y.astype(x.dtype)

        return Prepared(call, numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        w = self._weight(problem, weight)
        gy = grad_output
        if self.algorithm == "output-padding" and any(problem.output_padding):
            gy = grad_output.copy()
            for dim, op in enumerate(problem.output_padding):
                if op:
                    index = [slice(None)] * gy.ndim
                    index[2 + dim] = slice(gy.shape[2 + dim] - op, None)
                    gy[tuple(index)] = 0
        return Prepared(lambda: backward(problem, gy, x, w), numpy_fetch)


ALGORITHMS = ("output-padding", "groups", "correct")


def strategies() -> list[Strategy]:
    """Entry point ``buggy``."""
    return [Buggy(a) for a in ALGORITHMS]
