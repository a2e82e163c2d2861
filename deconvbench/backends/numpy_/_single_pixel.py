"""gemm-col2im when every spatial extent of the input is 1: the GEMM is the whole layer.

With one input position, tap k reaches the single output ``o = k·d − p`` and no two taps
reach the same one, so col2im adds nothing: it is at most a strided copy, and none at all
when the output is exactly the kernel (``d = 1``, ``p = 0``, no output_padding: the first
layer of a DCGAN generator, a noise vector to a 4×4 map). The GEMM is then laid out with
the batch folded into M, ``Y (N, Cout·∏K) = X (N, Cin) · W (Cin, Cout·∏K)``: both
operands in their own memory layout and the result already NCHW, so the call is one BLAS
call and, with padding or dilation, one copy to the reached positions. The backward is
the same two GEMMs as ever (``gx = G·Wᵀ``, ``gw = Xᵀ·G``) on grad_output's reached
positions ``G``, again without a layout pass when the output is the kernel.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._layout import bias_grad


def applies(problem: Problem) -> bool:
    return all(i == 1 for i in problem.input)


def _reached(problem: Problem) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Per dimension, the taps that reach an output and the output slice they reach
    (``o = k·d − p`` inside ``[0, O)``); None when no tap reaches the output."""
    taps, outs = [], []
    for k, o, p, d in zip(
        problem.kernel, problem.output, problem.padding, problem.dilation, strict=True
    ):
        first = -(-p // d)  # smallest k with k·d − p >= 0
        last = min(k - 1, (o - 1 + p) // d)
        if last < first:
            return None
        taps.append(slice(first, last + 1))
        start = first * d - p
        outs.append(slice(start, start + (last - first) * d + 1, d))
    return tuple(taps), tuple(outs)


def _is_identity(problem: Problem) -> bool:
    """The taps land on the whole output, in order: the GEMM's result is the output."""
    return problem.output == problem.kernel and all(
        p == 0 and d == 1 for p, d in zip(problem.padding, problem.dilation, strict=True)
    )


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g, n, nd = problem.groups, problem.batch, problem.ndim
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    X = x.reshape(n, g, cin_g).transpose(1, 0, 2)  # (g, N, Cin_g), a view
    W = weight.reshape(g, cin_g, -1)  # (g, Cin_g, Cout_g·∏K), the weight's own layout
    y: Array
    if g == 1 and _is_identity(problem):
        y = np.empty(problem.y_shape, x.dtype)
        np.matmul(X[0], W[0], out=y.reshape(n, -1))
    else:
        taps = np.matmul(X, W).reshape(g, n, cout_g, *problem.kernel)
        y = np.zeros(problem.y_shape, x.dtype)
        reached = _reached(problem)
        if reached is not None:
            yg = y.reshape(n, g, cout_g, *problem.output).transpose(1, 0, 2, *range(3, 3 + nd))
            k_sl, o_sl = reached
            yg[(..., *o_sl)] = taps[(..., *k_sl)]
    if bias is not None:
        np.add(y, bias.reshape(-1, *(1,) * nd), out=y)
    return y


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    g, n, nd = problem.groups, problem.batch, problem.ndim
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    gyg = grad_output.reshape(n, g, cout_g, *problem.output)
    if _is_identity(problem):
        G = gyg.reshape(n, g, -1).transpose(1, 0, 2)  # (g, N, Cout_g·∏K), a view
    else:
        # grad_output at each tap's output position; 0 for taps that reach none
        taps = np.zeros((g, n, cout_g, *problem.kernel), grad_output.dtype)
        reached = _reached(problem)
        if reached is not None:
            k_sl, o_sl = reached
            taps[(..., *k_sl)] = gyg.transpose(1, 0, 2, *range(3, 3 + nd))[(..., *o_sl)]
        G = taps.reshape(g, n, -1)
    W = weight.reshape(g, cin_g, -1)
    # gxᵀ = W·Gᵀ: the long Cout·∏K side as K with the weight untransposed runs about 2x
    # faster in OpenBLAS than G·Wᵀ (16 × 8192 × 100 here); gx itself is tiny
    gxt = np.matmul(W, G.transpose(0, 2, 1))  # (g, Cin_g, N)
    X = x.reshape(n, g, cin_g).transpose(1, 2, 0)  # (g, Cin_g, N), a view
    gw = np.matmul(X, G)  # (g, Cin_g, Cout_g·∏K): the weight's layout
    gx_nchw = np.ascontiguousarray(gxt.transpose(2, 0, 1)).reshape(problem.x_shape)
    return gx_nchw, gw.reshape(weight.shape), bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call: forward the output and the GEMM's result before its copy;
    backward grad_output at the taps, gx twice (grouped, then NCHW), gw and the bias grad."""
    taps = problem.batch * problem.out_channels * math.prod(problem.kernel)
    if pass_ == "forward":
        return math.prod(problem.y_shape) + taps
    x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
    return taps + 2 * x + w + (problem.out_channels if problem.bias else 0)
