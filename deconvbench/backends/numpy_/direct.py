"""``numpy/direct``: scatter-add by kernel tap (the definition), one GEMM per tap.

For each tap k, ``Z = W[:, :, k]ᵀ · X`` contracts channels for every input position at
once (batch and space folded into the GEMM's long side), and the part of Z that lands
inside the output is added at the strided positions ``o = i·s − p + k·d``. Backward runs
the same tap loop in reverse: grad_input gathers grad_output at those positions, and
grad_weight[k] is ``X · G_kᵀ``.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import tensor_elements
from ._layout import (
    add_bias,
    bias_grad,
    from_grouped,
    tap_slices,
    taps,
    to_grouped,
    weight_grouped,
    weight_ungrouped,
)
from ._strategy import NumpyStrategy


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g = problem.groups
    X = to_grouped(x, g)  # (g, Cin_g, N, *I)
    Xf = X.reshape(g, X.shape[1], -1)
    W = weight_grouped(weight, g)  # (g, Cin_g, Cout_g, *K)
    cout_g = W.shape[2]
    Y = np.zeros((g, cout_g, problem.batch, *problem.output), dtype=x.dtype)
    for tap in taps(problem):
        sl = tap_slices(problem, tap)
        if sl is None:
            continue
        ins, outs = sl
        Wk = W[(slice(None), slice(None), slice(None), *tap)]  # (g, Cin_g, Cout_g)
        Z = np.matmul(Wk.transpose(0, 2, 1), Xf).reshape(g, cout_g, *X.shape[2:])
        Y[(..., *outs)] += Z[(..., *ins)]
    return add_bias(from_grouped(Y), bias)


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    g = problem.groups
    X = to_grouped(x, g)  # (g, Cin_g, N, *I)
    GY = to_grouped(grad_output, g)  # (g, Cout_g, N, *O)
    W = weight_grouped(weight, g)
    cin_g, cout_g = W.shape[1], W.shape[2]
    GX = np.zeros_like(X)
    GW = np.zeros_like(W)
    for tap in taps(problem):
        sl = tap_slices(problem, tap)
        if sl is None:
            continue
        ins, outs = sl
        G = np.ascontiguousarray(GY[(..., *outs)])  # (g, Cout_g, N, *Iv)
        Gf = G.reshape(g, cout_g, -1)
        Xv = X[(..., *ins)].reshape(g, cin_g, -1)  # copies only when the slice is partial
        Wk = W[(slice(None), slice(None), slice(None), *tap)]  # (g, Cin_g, Cout_g)
        GX[(..., *ins)] += np.matmul(Wk, Gf).reshape(g, cin_g, *G.shape[2:])
        GW[(slice(None), slice(None), slice(None), *tap)] = np.matmul(Xv, Gf.transpose(0, 2, 1))
    return from_grouped(GX), weight_ungrouped(GW), bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call: the grouped copies, the accumulators, the NCHW result, and
    two taps' products (a tap's product is computed while the previous one is alive)."""
    x, w, y, b = tensor_elements(problem)
    tap = problem.batch * problem.out_channels * math.prod(problem.input)  # Z, or G
    if pass_ == "forward":
        return x + 2 * y + 2 * tap + w  # X, Y, NCHW y, two Z, a tap's weight
    return 5 * x + y + w + 2 * tap + b  # X, GY, GX, GW, 2 G, 2 Xv, GX's product, NCHW gx


class Direct(NumpyStrategy):
    algorithm = "direct"
    description = "scatter-add by kernel tap, one GEMM per tap over batch and space"

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
