"""``numpy/zero-insert``: a transposed convolution as an ordinary convolution of a sparse input.

Per dimension, put ``s − 1`` zeros between input samples (length ``(I−1)·s + 1``), pad each
side by ``d·(K−1) − p`` (crop where negative) and the right side by ``output_padding`` more;
then ``y`` is the stride-1, dilation-d correlation of that buffer with the kernel flipped
and its in/out channels swapped. Written as one zero-filled buffer (dilation and padding in
a single strided copy), an im2col and one GEMM. It does ≈ s^d times the useful FLOPs — most
products hit inserted zeros — which is exactly what this strategy is here to show.

Backward, in the same spirit:

- grad_input is the ordinary strided convolution of grad_output with the (unflipped)
  kernel: im2col of the padded grad_output with stride s and dilation d, one GEMM whose
  weight operand is the kernel in its own ``(Cin, Cout·∏K)`` layout. (This is the
  zero-insert adjoint evaluated only where the inserted zeros came from the input.)
- grad_weight correlates grad_output with the zero-inserted, padded input (im2col of the
  same sparse buffer as the forward), then flips the kernel back and swaps channels.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import (
    bias_view,
    correlate,
    embed,
    flip_kernel,
    grad_output_cols,
    grad_output_cols_elements,
    grouped_view,
    im2col,
    new_output,
    padded_grad_output_elements,
    tensor_elements,
)
from ._layout import bias_grad, from_grouped, to_grouped, weight_grouped, weight_ungrouped
from ._strategy import NumpyStrategy


def sparse_input(problem: Problem, x: Array) -> Array:
    """The zero-dilated, padded input ``(g, Cin/g, N, *(O + d·(K−1)))``."""
    lengths = [
        o + d * (k - 1)
        for o, d, k in zip(problem.output, problem.dilation, problem.kernel, strict=True)
    ]
    offsets = [
        d * (k - 1) - p
        for d, k, p in zip(problem.dilation, problem.kernel, problem.padding, strict=True)
    ]
    return embed(grouped_view(x, problem.groups), lengths, offsets, problem.stride)


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g, nd = problem.groups, problem.ndim
    xs = sparse_input(problem, x)  # (g, Cin_g, N, *(O + d(K-1)))
    # flipped kernel with channels swapped: (g, Cout_g, Cin_g·∏K), rows (ci, *k)
    W = flip_kernel(weight_grouped(weight, g), nd).swapaxes(1, 2)
    Wc = np.ascontiguousarray(W).reshape(g, W.shape[1], -1)
    z = correlate(xs, Wc, problem.kernel, problem.dilation, (1,) * nd, problem.output)
    y, yg = new_output(problem.y_shape, g, x.dtype)
    if bias is None:
        yg[...] = z
    else:
        np.add(z, bias_view(bias, g, nd), out=yg)
    return y


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    g, nd = problem.groups, problem.ndim
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    W = weight.reshape(g, cin_g, -1)  # (g, Cin_g, Cout_g·∏K): natural layout, no copy
    cols = grad_output_cols(problem, grad_output)
    gx = np.matmul(W, cols).reshape(g, cin_g, problem.batch, *problem.input)

    xs = sparse_input(problem, x)
    xcols = im2col(xs, problem.kernel, problem.dilation, (1,) * nd, problem.output)
    GY = to_grouped(grad_output, g).reshape(g, cout_g, -1)  # (g, Cout_g, N·∏O)
    gwc = np.matmul(GY, xcols.transpose(0, 2, 1))  # (g, Cout_g, Cin_g·∏K), flipped kernel
    gwc = gwc.reshape(g, cout_g, cin_g, *problem.kernel)
    gw = np.ascontiguousarray(flip_kernel(gwc, nd).swapaxes(1, 2))
    return from_grouped(gx), weight_ungrouped(gw), bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call: the sparse input, its im2col (∏K times the output, per
    input channel), the GEMM result and the NCHW result; backward also the columns of
    grad_output."""
    x, w, y, b = tensor_elements(problem)
    spans = (
        o + d * (k - 1)
        for o, d, k in zip(problem.output, problem.dilation, problem.kernel, strict=True)
    )
    sparse = problem.batch * problem.in_channels * math.prod(spans)
    cols = problem.in_channels * math.prod(problem.kernel) * (y // problem.out_channels)
    if pass_ == "forward":
        return sparse + cols + 2 * y + 2 * w
    gcols = grad_output_cols_elements(problem)
    early = padded_grad_output_elements(problem) + gcols  # while grad_output's im2col runs
    return max(early, gcols + 2 * x + sparse + cols + y + 2 * w) + b


class ZeroInsert(NumpyStrategy):
    algorithm = "zero-insert"
    description = "zero-dilate and pad the input, im2col, one GEMM with the flipped kernel"

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
