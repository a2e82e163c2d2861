"""``numpy/gemm-col2im``: one large GEMM into columns, then col2im (the Caffe/PyTorch slow path).

Forward: ``cols = Wᵀ·X`` with W seen as ``(Cin/g, Cout/g·∏K)`` — the weight's own memory
layout, handed to BLAS transposed, so it is never copied — and X as ``(Cin/g, N·∏I)`` with
the batch folded into the long side: one GEMM per group for the whole batch. Row
``(co, *k)`` of ``cols`` is what tap k of every input position contributes to channel co;
col2im adds each tap's slab at the output positions ``o = i·s − p + k·d`` (one add per
tap). The adds are grouped by output phase (:class:`._layout.Phase`): the taps of one phase
land on that phase's dense grid, so they accumulate unit-stride in a small batch-last
buffer that is written once to its interleaved NCHW positions — about 3x faster than
strided adds straight into NCHW, for the same additions.

Backward is the mirror image: gather grad_output at those positions into columns
(im2col with stride s and dilation d), then one GEMM ``W·cols`` for grad_input and one
``X·colsᵀ`` for grad_weight, which comes out in the weight's own layout.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import (
    bias_view,
    grad_output_cols,
    grad_output_cols_elements,
    grouped_view,
    new_output,
    padded_grad_output_elements,
    tensor_elements,
    write_phase,
)
from ._layout import bias_grad, from_grouped, phase_tap_slices, phases, to_grouped
from ._strategy import NumpyStrategy


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g, nd, n = problem.groups, problem.ndim, problem.batch
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    # batch-last X (g, Cin_g, ∏I·N): col2im then moves (last spatial, batch) runs
    X = np.ascontiguousarray(grouped_view(x, g, batch_last=True)).reshape(g, cin_g, -1)
    W = weight.reshape(g, cin_g, -1)  # (g, Cin_g, Cout_g·∏K), no copy
    cols = np.matmul(W.transpose(0, 2, 1), X)  # (g, Cout_g·∏K, ∏I·N)
    cols = cols.reshape(g, cout_g, *problem.kernel, *problem.input, n)
    y, yg = new_output(problem.y_shape, g, x.dtype)
    b = None if bias is None else bias_view(bias, g, nd)
    # col2im, one output phase at a time (see the module docstring)
    for combo in itertools.product(*phases(problem)):
        if not all(ph.count for ph in combo):
            continue
        outs = tuple(ph.out_slice for ph in combo)
        acc = np.zeros((g, cout_g, *(ph.count for ph in combo), n), x.dtype)
        for js in itertools.product(*(range(ph.taps) for ph in combo)):
            sl = [
                phase_tap_slices(ph, j, i)
                for ph, j, i in zip(combo, js, problem.input, strict=True)
            ]
            if any(s is None for s in sl):
                continue
            tap = tuple(ph.k0 + j * ph.kstep for ph, j in zip(combo, js, strict=True))
            ins = tuple(s[0] for s in sl if s is not None)
            ms = tuple(s[1] for s in sl if s is not None)
            dst = acc[(slice(None), slice(None), *ms)]
            np.add(dst, cols[(slice(None), slice(None), *tap, *ins)], out=dst)
        z = np.moveaxis(acc, -1, 2)  # view (g, Cout_g, N, *M)
        write_phase(yg, outs, z, b)
    return y


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    g = problem.groups
    cin_g = problem.in_channels // g
    cols = grad_output_cols(problem, grad_output)  # (g, Cout_g·∏K, N·∏I)
    W = weight.reshape(g, cin_g, -1)
    gx = np.matmul(W, cols).reshape(g, cin_g, problem.batch, *problem.input)
    X = to_grouped(x, g).reshape(g, cin_g, -1)
    gw = np.matmul(X, cols.transpose(0, 2, 1))  # (g, Cin_g, Cout_g·∏K) = weight layout
    return from_grouped(gx), gw.reshape(weight.shape), bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call: forward the batch-last X, the columns ``Cout·∏K × N·∏I``,
    the output and two phase accumulators; backward grad_output's columns and three
    input-sized arrays (gx, the grouped X, NCHW gx)."""
    x, w, y, b = tensor_elements(problem)
    if pass_ == "forward":
        cols = problem.out_channels * math.prod(problem.kernel) * (x // problem.in_channels)
        largest = math.prod(max(ph.count for ph in dim) for dim in phases(problem))
        acc = problem.batch * problem.out_channels * largest
        return x + cols + y + 2 * acc
    gcols = grad_output_cols_elements(problem)
    early = padded_grad_output_elements(problem) + gcols
    return max(early, gcols + 3 * x + w) + b


class GemmCol2im(NumpyStrategy):
    algorithm = "gemm-col2im"
    description = "one GEMM Wᵀ·X over the whole batch into columns, then col2im scatter-add"

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
