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

The columns are ∏K times the output (per input channel), which for a large kernel and
stride is far beyond memory (1×1 channels, 15×13×13 input, kernel and stride 16: 146 GiB).
So every im2col + GEMM goes through :func:`column_blocks`: while the columns fit
:data:`COLUMN_BUDGET` it is the single im2col and GEMM above; beyond it the columns are
made a cache-sized block of output positions at a time (:data:`BLOCK_BYTES`) in one reused
buffer. A block holds whole columns, so each output of forward and grad_input sums the same
products (in the BLAS's order for that block's size: rounding-level differences);
grad_weight sums its blocks' GEMMs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import (
    A,
    bias_view,
    correlate,
    embed,
    flip_kernel,
    grouped_view,
    im2col,
    new_output,
    padded_grad_output,
    padded_grad_output_elements,
    tensor_elements,
    windows,
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


COLUMN_BUDGET = 256 * 2**20
"""Bytes of im2col columns and GEMM result up to which a call is the single im2col and GEMM
(every dcgan layer is): its results are exactly those of the unblocked algorithm."""

BLOCK_BYTES = 2**20
"""Bytes of one block beyond :data:`COLUMN_BUDGET`: a block that stays in the core's cache
between its copy and its GEMM. Measured on a 2-vCPU EPYC, float32: 1 MiB blocks run a
zero-insert 2.3× faster than one 256 MiB im2col, and larger blocks (4-16 MiB) up to 8×
slower than 1 MiB ones."""

Block = tuple[slice, ...]


def split_axis(per_column: int, sizes: Sequence[int], limit: int) -> tuple[int, int]:
    """``(axis, step)``: the outermost of the column axes ``sizes`` one index of which
    (the axes after it whole) fits ``limit`` elements of ``per_column`` each, and how many
    of its indices a block takes (1 on the last axis when even one index does not fit)."""
    for axis in range(len(sizes)):
        step = limit // (per_column * math.prod(sizes[axis + 1 :]))
        if step >= 1:
            return axis, min(step, sizes[axis])
    return len(sizes) - 1, 1


def column_blocks(per_column: int, sizes: Sequence[int], limit: int) -> list[Block]:
    """Slices over the column axes ``(n, *q)`` cutting them into blocks of at most ``limit``
    elements (one block, all ``slice(None)``, when everything fits)."""
    axis, step = split_axis(per_column, sizes, limit)
    singles = [[slice(i, i + 1) for i in range(n)] for n in sizes[:axis]]
    runs = [slice(i, min(i + step, sizes[axis])) for i in range(0, sizes[axis], step)]
    whole = [[slice(None)] for _ in sizes[axis + 1 :]]
    if axis == 0 and len(runs) == 1:
        return [tuple(slice(None) for _ in sizes)]
    return [tuple(b) for b in itertools.product(*singles, runs, *whole)]


def block_source(src: A, block: Block, spans: Sequence[int], stride: Sequence[int]) -> A:
    """The part of ``src`` ``(g, C, N, *S)`` that the windows of output ``block`` read."""
    index: list[slice] = [slice(None), slice(None), block[0]]
    for sl, span, s in zip(block[1:], spans, stride, strict=True):
        if sl.start is None:
            index.append(slice(None))
        else:
            index.append(slice(sl.start * s, (sl.stop - 1) * s + span))
    return src[tuple(index)]


class Columns:
    """im2col of ``src`` one block of output positions at a time, in one reused buffer."""

    def __init__(
        self,
        src: A,
        kernel: Sequence[int],
        dilation: Sequence[int],
        stride: Sequence[int],
        out: Sequence[int],
        blocks: list[Block],
    ) -> None:
        self.src, self.kernel, self.dilation, self.stride = src, kernel, dilation, stride
        self.sizes = (src.shape[2], *out)
        self.spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
        self.rows = src.shape[1] * math.prod(kernel)
        largest = max(math.prod(self.block_shape(b)) for b in blocks)
        self.buffer = np.empty(src.shape[0] * self.rows * largest, dtype=src.dtype)

    def block_shape(self, block: Block) -> tuple[int, ...]:
        return tuple(len(range(*sl.indices(n))) for sl, n in zip(block, self.sizes, strict=True))

    def __call__(self, block: Block) -> A:
        """The block's columns ``(g, C·∏K, cols)``, valid until the next call."""
        part = block_source(self.src, block, self.spans, self.stride)
        view = windows(part, self.kernel, self.dilation, self.stride, self.block_shape(block)[1:])
        cols = self.buffer[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        return cols.reshape(self.src.shape[0], self.rows, -1)


def blocks_for(src: A, kernel: Sequence[int], others: int, out: Sequence[int]) -> list[Block]:
    """Blocks over ``(n, *out)``: one when the columns plus ``others`` values per column (the
    GEMM's result) fit :data:`COLUMN_BUDGET`, else blocks of :data:`BLOCK_BYTES`."""
    per_column = src.shape[0] * (src.shape[1] * math.prod(kernel) + others)
    sizes = (src.shape[2], *out)
    if per_column * math.prod(sizes) * src.itemsize <= COLUMN_BUDGET:
        return [tuple(slice(None) for _ in sizes)]
    return column_blocks(per_column, sizes, max(1, BLOCK_BYTES // src.itemsize))


def correlate_blocked(
    src: A,
    weight: A,
    kernel: Sequence[int],
    dilation: Sequence[int],
    stride: Sequence[int],
    out: Sequence[int],
) -> A:
    """:func:`correlate` with the columns made a bounded block at a time."""
    blocks = blocks_for(src, kernel, weight.shape[1], out)
    if len(blocks) == 1:
        return correlate(src, weight, kernel, dilation, stride, out)
    columns = Columns(src, kernel, dilation, stride, out, blocks)
    z = np.empty((*weight.shape[:2], *columns.sizes), dtype=src.dtype)
    for block in blocks:
        zb = np.matmul(weight, columns(block))
        z[(slice(None), slice(None), *block)] = zb.reshape(
            zb.shape[:2] + columns.block_shape(block)
        )
    return z


def weight_correlate_blocked(src: A, gy: A, kernel: Sequence[int], dilation: Sequence[int]) -> A:
    """``Σ_cols gy[g, co, col] · cols[g, (c, *k), col]`` ``(g, Co, C·∏K)``: the stride-1
    im2col of ``src`` against ``gy`` ``(g, Co, N, *out)``, a bounded block at a time."""
    g, co, out = gy.shape[0], gy.shape[1], gy.shape[3:]
    ones = (1,) * len(kernel)
    blocks = blocks_for(src, kernel, co, out)
    if len(blocks) == 1:
        xcols = im2col(src, kernel, dilation, ones, out)
        result: A = np.matmul(gy.reshape(g, co, -1), xcols.transpose(0, 2, 1))
        return result
    columns = Columns(src, kernel, dilation, ones, out, blocks)
    total = np.zeros((g, co, columns.rows), dtype=src.dtype)
    for block in blocks:
        gyb = gy[(slice(None), slice(None), *block)].reshape(g, co, -1)
        total += np.matmul(gyb, columns(block).transpose(0, 2, 1))
    return total


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g, nd = problem.groups, problem.ndim
    xs = sparse_input(problem, x)  # (g, Cin_g, N, *(O + d(K-1)))
    # flipped kernel with channels swapped: (g, Cout_g, Cin_g·∏K), rows (ci, *k)
    W = flip_kernel(weight_grouped(weight, g), nd).swapaxes(1, 2)
    Wc = np.ascontiguousarray(W).reshape(g, W.shape[1], -1)
    z = correlate_blocked(xs, Wc, problem.kernel, problem.dilation, (1,) * nd, problem.output)
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
    gyp = padded_grad_output(problem, grad_output)
    gx = correlate_blocked(gyp, W, problem.kernel, problem.dilation, problem.stride, problem.input)
    del gyp

    xs = sparse_input(problem, x)
    GY = to_grouped(grad_output, g)  # (g, Cout_g, N, *O)
    gwc = weight_correlate_blocked(xs, GY, problem.kernel, problem.dilation)
    gwc = gwc.reshape(g, cout_g, cin_g, *problem.kernel)  # flipped kernel
    gw = np.ascontiguousarray(flip_kernel(gwc, nd).swapaxes(1, 2))
    return from_grouped(gx), weight_ungrouped(gw), bias_grad(problem, grad_output)


def held_columns(problem: Problem, rows: int, others: int, columns: int) -> int:
    """Elements of im2col columns a GEMM holds at once: all ``rows × columns`` of them when
    they and the ``others × columns`` results fit :data:`COLUMN_BUDGET` (the results are
    then the caller's own), else one block of both (:func:`blocks_for`)."""
    if (rows + others) * columns * problem.itemsize <= COLUMN_BUDGET:
        return rows * columns
    return max(BLOCK_BYTES // problem.itemsize, rows + others)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call: the sparse input, a block of its im2col with its GEMM result
    (all of it, ∏K times the output per input channel, when that fits the budget), the GEMM
    result and the NCHW result; backward also the padded grad_output and its columns."""
    x, w, y, b = tensor_elements(problem)
    spans = (
        o + d * (k - 1)
        for o, d, k in zip(problem.output, problem.dilation, problem.kernel, strict=True)
    )
    sparse = problem.batch * problem.in_channels * math.prod(spans)
    kernel = math.prod(problem.kernel)
    outputs = y // problem.out_channels  # N·∏O columns
    cols = held_columns(problem, problem.in_channels * kernel, problem.out_channels, outputs)
    if pass_ == "forward":
        return sparse + cols + 2 * y + 2 * w
    inputs = x // problem.in_channels  # N·∏I columns of grad_output's im2col
    gcols = held_columns(problem, problem.out_channels * kernel, problem.in_channels, inputs)
    early = padded_grad_output_elements(problem) + gcols + x  # while grad_input's GEMM runs
    return max(early, 2 * x + sparse + cols + y + 2 * w) + b


class ZeroInsert(NumpyStrategy):
    algorithm = "zero-insert"
    description = "zero-dilate and pad the input, im2col, one GEMM with the flipped kernel"

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
