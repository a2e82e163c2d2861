"""An example deconvbench backend: ``example/einsum-taps`` (numpy ``einsum``, tap by tap).

The entry point ``example = "deconvbench_example:strategies"`` in the group
``deconvbench.backends`` is all deconvbench needs to find it.
"""

from __future__ import annotations

import itertools

import numpy as np

from deconvbench.backends import Array, Capabilities, Prepared, Strategy, numpy_fetch
from deconvbench.problem import Problem


def _pairs(problem: Problem, tap: tuple[int, ...]) -> tuple[list[slice], list[slice]] | None:
    """Input and output slices joined by one tap (o = i*s - p + k*d, kept inside the output)."""
    ins, outs = [], []
    for size, out, s, p, d, k in zip(
        problem.input,
        problem.output,
        problem.stride,
        problem.padding,
        problem.dilation,
        tap,
        strict=True,
    ):
        valid = [i for i in range(size) if 0 <= i * s - p + k * d < out]
        if not valid:
            return None
        ins.append(slice(valid[0], valid[-1] + 1))
        o0 = valid[0] * s - p + k * d
        outs.append(slice(o0, o0 + (len(valid) - 1) * s + 1, s))
    return ins, outs


class EinsumTaps(Strategy):
    backend = "example"
    algorithm = "einsum-taps"
    description = "example plugin: one einsum per kernel tap and group"
    capabilities = Capabilities(dims=frozenset({1, 2, 3}), dtypes=frozenset({"float32", "float64"}))

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        def call() -> Array:
            g, cin, cout = problem.groups, problem.in_channels, problem.out_channels
            y = np.zeros(problem.y_shape, dtype=x.dtype)
            for tap in itertools.product(*(range(k) for k in problem.kernel)):
                pairs = _pairs(problem, tap)
                if pairs is None:
                    continue
                ins, outs = pairs
                for gi in range(g):
                    ci = slice(gi * cin // g, (gi + 1) * cin // g)
                    co = slice(gi * cout // g, (gi + 1) * cout // g)
                    xs = x[(slice(None), ci, *ins)]
                    w = weight[(ci, slice(None), *tap)]
                    y[(slice(None), co, *outs)] += np.einsum("nc...,cd->nd...", xs, w)
            if bias is not None:
                y += bias.reshape((1, -1) + (1,) * problem.ndim)
            return y

        return Prepared(call, numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        def call() -> tuple[Array, Array, Array | None]:
            g, cin, cout = problem.groups, problem.in_channels, problem.out_channels
            gx = np.zeros_like(x)
            gw = np.zeros_like(weight)
            for tap in itertools.product(*(range(k) for k in problem.kernel)):
                pairs = _pairs(problem, tap)
                if pairs is None:
                    continue
                ins, outs = pairs
                for gi in range(g):
                    ci = slice(gi * cin // g, (gi + 1) * cin // g)
                    co = slice(gi * cout // g, (gi + 1) * cout // g)
                    gy = grad_output[(slice(None), co, *outs)]
                    w = weight[(ci, slice(None), *tap)]
                    gx[(slice(None), ci, *ins)] += np.einsum("nd...,cd->nc...", gy, w)
                    xs = x[(slice(None), ci, *ins)]
                    sp = "xyz"[: problem.ndim]  # einsum sums spatial axes only when named
                    gw[(ci, slice(None), *tap)] += np.einsum(f"nc{sp},nd{sp}->cd", xs, gy)
            gb = grad_output.sum(axis=(0, *range(2, grad_output.ndim))) if problem.bias else None
            return gx, gw, gb

        return Prepared(call, numpy_fetch)


def strategies() -> list[Strategy]:
    """The entry point: every strategy this backend provides."""
    return [EinsumTaps()]
