"""``numpy/gemm-col2im``: one large GEMM into columns, then col2im (the Caffe/PyTorch slow path).

Forward: ``cols = Wᵀ·X`` with W seen as ``(Cin/g, Cout/g·∏K)`` — the weight's own memory
layout, handed to BLAS transposed, so it is never copied — and X as ``(Cin/g, N·∏I)`` with
the batch folded into the long side: one GEMM per group for the whole batch. Row
``(co, *k)`` of ``cols`` is what tap k of every input position contributes to channel co;
col2im adds each tap's slab at the output positions ``o = i·s − p + k·d`` (one add per
tap). The adds are grouped by output phase (:class:`._layout.Phase`): the taps of one phase
land on that phase's dense grid, so they accumulate unit-stride in a small buffer that is
written once to its interleaved NCHW positions — about 3x faster than strided adds
straight into NCHW, for the same additions.

Backward is the mirror image: gather grad_output at those positions into columns
(im2col with stride s and dilation d), then one GEMM ``W·cols`` for grad_input and one
``X·colsᵀ`` for grad_weight, which comes out in the weight's own layout.

The GEMMs run near the BLAS's peak (dcgan g2-g4, 2 cores: 150-195 GFLOP/s inside the
call, 165-200 alone, against 200-215 measured for large GEMMs); what separates the
strategy from oneDNN is the single-threaded layout passes around them, so the layout
follows the shape:

- **small images** (``∏I`` < :data:`PER_IMAGE_COLUMNS`): batch-last columns ``(∏I·N)``, so
  that a phase's adds, and the backward's im2col (through grad_output's phase planes,
  :func:`._conv.grad_output_cols_batch_last`), move runs of (last spatial extent × batch)
  values even on 4×4 inputs; the price is transposing copies of x and of y (or gx).
  These passes run on one core each, so both passes split the batch into one part per
  BLAS thread (:mod:`._batch_split`), each part's passes and GEMMs on its own core.
- **large images**: one GEMM per image ``Wᵀ·x[n]`` on x in its own NCHW layout, and gx
  straight out in NCHW (``W·cols[n]``): no transposing copy at all; the rows the adds and
  copies move are already long (``W ≥ 32``). Each image's GEMM is still wide.
- **one input position** (:mod:`._single_pixel`): no col2im; the batch folded into M,
  ``Y = X·W`` is the NCHW output itself.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from . import _batch_split, _single_pixel
from ._conv import (
    bias_view,
    grad_output_cols,
    grad_output_cols_batch_last,
    grad_output_cols_elements,
    grouped_view,
    padded_grad_output_elements,
    tensor_elements,
    write_phase,
)
from ._layout import bias_grad, phase_tap_slices, phases, to_grouped
from ._strategy import NumpyStrategy

PER_IMAGE_COLUMNS = 512
"""From this many input positions per image (``∏I``), each image is its own GEMM (see the
module docstring). Measured on the 2-core EPYC at batch 16, same process, alternating:
``∏I`` = 1024 (dcgan g5) per image against folded, forward 2.5 against 4.5 ms, backward
6.4 against 7.3; 256 (g4) folded against per image, backward 20.2 against 24.7, forward
11.9 against 12.9; 64 (g3) forward 9.5 against 11.9, backward 16.4 against 20.2."""


def per_image(problem: Problem) -> bool:
    return math.prod(problem.input) >= PER_IMAGE_COLUMNS


def _col2im(
    problem: Problem, cols: Array, lead: int, y_view: Array, bias: Array | None, batch_last: bool
) -> None:
    """Scatter-add ``cols`` ``(*L, *K, *I)`` (``(*L, *K, *I, N)`` when ``batch_last``) into
    ``y_view`` (the output seen as ``(*L, *O)``, or ``(g, C, N, *O)`` when ``batch_last``),
    one output phase at a time, with the bias; ``lead`` is the number of axes in ``L``."""
    pre = (slice(None),) * lead
    tail = (problem.batch,) if batch_last else ()
    for combo in itertools.product(*phases(problem)):
        if not all(ph.count for ph in combo):
            continue
        outs = tuple(ph.out_slice for ph in combo)
        acc = np.zeros((*cols.shape[:lead], *(ph.count for ph in combo), *tail), cols.dtype)
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
            dst = acc[(*pre, *ms)]
            np.add(dst, cols[(*pre, *tap, *ins)], out=dst)
        z = np.moveaxis(acc, -1, 2) if batch_last else acc  # batch-last: a view (g, C, N, *M)
        write_phase(y_view, outs, z, bias)


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    if _single_pixel.applies(problem):
        return _single_pixel.forward(problem, x, weight, bias)
    g, nd, n = problem.groups, problem.ndim, problem.batch
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    Wt = weight.reshape(g, cin_g, -1).transpose(0, 2, 1)  # (g, Cout_g·∏K, Cin_g), no copy
    if per_image(problem):
        # x in its own layout, one GEMM per image and group: no layout pass on x or y
        cols = np.matmul(Wt, x.reshape(n, g, cin_g, -1))  # (N, g, Cout_g·∏K, ∏I)
        y = np.empty(problem.y_shape, x.dtype)
        b = None if bias is None else bias.reshape(g, cout_g, *(1,) * nd)
        lead = (n, g, cout_g)
        y_view = y.reshape(*lead, *problem.output)
        _col2im(problem, cols.reshape(*lead, *problem.kernel, *problem.input), 3, y_view, b, False)
        return y
    # parts of the batch side by side, each on one core (see _batch_split)
    y = np.empty(problem.y_shape, x.dtype)
    _batch_split.over_batch(
        problem,
        _batch_split.parts(n, math.prod(problem.input)),
        lambda sub, part: _folded_forward(sub, x[part], Wt, bias, y[part]),
    )
    return y


def _folded_forward(problem: Problem, x: Array, Wt: Array, bias: Array | None, y: Array) -> None:
    """``y`` (written whole) of a batch folded into the GEMM: batch-last X
    ``(g, Cin_g, ∏I·N)``, so that col2im moves (last spatial, batch) runs."""
    g, nd, n = problem.groups, problem.ndim, problem.batch
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    X = np.ascontiguousarray(grouped_view(x, g, batch_last=True)).reshape(g, cin_g, -1)
    cols = np.matmul(Wt, X)  # (g, Cout_g·∏K, ∏I·N)
    cols = cols.reshape(g, cout_g, *problem.kernel, *problem.input, n)
    b = None if bias is None else bias_view(bias, g, nd)
    _col2im(problem, cols, 2, grouped_view(y, g), b, True)


def _stacked_grad_weight(problem: Problem) -> bool:
    """Per-image weight gradients summed, instead of copying X to ``(Cin, N·∏I)``, when
    their stack (N weights) is no larger than that copy."""
    return problem.batch * math.prod(problem.weight_shape) <= math.prod(problem.x_shape)


def _transposed_grad_weight(problem: Problem) -> bool:
    """``gwᵀ = cols·Xᵀ`` then a transposing copy, instead of ``gw = X·colsᵀ``, when the
    weight is at most half of x: the GEMM's reduction ``N·∏I`` is then at least twice its
    rows ``Cout·∏K``, and OpenBLAS runs it faster with the long side untransposed (dcgan
    g4: 6.1 ms with the copy against 7.3 ms; on g3, weight twice x, the copy costs more
    than it saves: 6.5 against 6.0-6.3 ms)."""
    return 2 * math.prod(problem.weight_shape) <= math.prod(problem.x_shape)


def _grad_weight(problem: Problem, X: Array, cols: Array, weight: Array) -> Array:
    """``gw = X·colsᵀ`` (``X`` and ``cols`` with the same column order), in the weight's
    layout."""
    gw: Array
    if _transposed_grad_weight(problem):
        gwt = np.matmul(cols, X.transpose(0, 2, 1))  # (g, Cout_g·∏K, Cin_g)
        gw = np.ascontiguousarray(gwt.transpose(0, 2, 1))
    else:
        gw = np.matmul(X, cols.transpose(0, 2, 1))  # (g, Cin_g, Cout_g·∏K)
    return gw.reshape(weight.shape)


def _folded_grads(
    problem: Problem, grad_output: Array, x: Array, weight: Array, gx: Array
) -> Array:
    """grad_input (into ``gx``) and grad_weight of a batch folded into the GEMMs.

    Batch-last columns (∏I·N): the copies move long runs even on 4×4 images, where the
    strided gather into batch-first columns moves runs of 4-16 values; gx and X are
    transposed for it. Timed alternating in one process against batch-first: dcgan g2
    13.0 against 13.5 ms, g3 13.9 against 14.0-14.3, g4 even (16.4-16.9)."""
    g, n = problem.groups, problem.batch
    cin_g = problem.in_channels // g
    cols = grad_output_cols_batch_last(problem, grad_output)  # (g, Cout_g·∏K, ∏I·N)
    gxb = np.matmul(weight.reshape(g, cin_g, -1), cols).reshape(g, cin_g, *problem.input, n)
    gx[...] = np.moveaxis(gxb, -1, 0).reshape(gx.shape)
    X = np.ascontiguousarray(grouped_view(x, g, batch_last=True)).reshape(g, cin_g, -1)
    return _grad_weight(problem, X, cols, weight)


def _per_image_grads(
    problem: Problem, grad_output: Array, x: Array, weight: Array, gx: Array
) -> Array:
    """grad_input (into ``gx``) and grad_weight, one GEMM per image: each image's columns
    are a strided view, so gx comes out NCHW with no layout pass."""
    g, n = problem.groups, problem.batch
    cin_g = problem.in_channels // g
    cols = grad_output_cols(problem, grad_output)  # (g, Cout_g·∏K, N·∏I)
    ci = cols.reshape(g, cols.shape[1], n, -1).transpose(2, 0, 1, 3)  # (N, g, R, ∏I)
    np.matmul(weight.reshape(g, cin_g, -1), ci, out=gx.reshape(n, g, cin_g, -1))
    if _stacked_grad_weight(problem):
        gw: Array = np.matmul(x.reshape(n, g, cin_g, -1), ci.transpose(0, 1, 3, 2)).sum(axis=0)
        return gw.reshape(weight.shape)
    X = to_grouped(x, g).reshape(g, cin_g, -1)
    return _grad_weight(problem, X, cols, weight)


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    """:func:`_per_image_grads`, or :func:`_folded_grads` on parts of the batch side by
    side, each on one core (:mod:`._batch_split`), their weight gradients added in batch
    order. (Parts do not pay on large images: dcgan g5's per-image GEMMs, split in two
    single-threaded halves, took 5.3-5.5 ms against 3.5 on both threads.)"""
    if _single_pixel.applies(problem):
        return _single_pixel.backward(problem, grad_output, x, weight)
    n = problem.batch
    folded = not per_image(problem)
    grads = _folded_grads if folded else _per_image_grads
    gx = np.empty(problem.x_shape, x.dtype)
    count = _batch_split.parts(n, math.prod(problem.input)) if folded else 1
    gws = _batch_split.over_batch(
        problem,
        count,
        lambda sub, part: grads(sub, grad_output[part], x[part], weight, gx[part]),
    )
    gw = gws[0]
    for other in gws[1:]:  # in batch order, whichever part finished first
        np.add(gw, other, out=gw)
    return gx, gw, bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call.

    Forward: the batch-last X (small images only), the columns ``Cout·∏K × N·∏I``, the
    output and two phase accumulators. Backward: grad_output's columns with, first, what
    they are built from (padded grad_output, or its phase planes), then up to three
    input-sized arrays (gx twice, X re-laid out) and a weight gradient per part of the
    batch (small images), or the stacked per-image weight gradients.
    """
    if _single_pixel.applies(problem):
        return _single_pixel.workspace(problem, pass_)
    x, w, y, b = tensor_elements(problem)
    if pass_ == "forward":
        cols = problem.out_channels * math.prod(problem.kernel) * (x // problem.in_channels)
        largest = math.prod(max(ph.count for ph in dim) for dim in phases(problem))
        acc = problem.batch * problem.out_channels * largest
        return (0 if per_image(problem) else x) + cols + y + 2 * acc
    gcols = grad_output_cols_elements(problem)
    if per_image(problem):
        early = padded_grad_output_elements(problem) + gcols
        late = x + (problem.batch * w if _stacked_grad_weight(problem) else x) + w
    else:
        # the phase planes: s per dimension, each ⌈padded length / s⌉ long
        planes = (
            problem.batch
            * problem.out_channels
            * math.prod(
                s * -(-((i - 1) * s + d * (k - 1) + 1) // s)
                for i, s, d, k in zip(
                    problem.input, problem.stride, problem.dilation, problem.kernel, strict=True
                )
            )
        )
        early = planes + gcols
        late = 3 * x + w * _batch_split.most_parts(problem.batch)  # a weight per part
    return max(early, gcols + late) + b


class GemmCol2im(NumpyStrategy):
    algorithm = "gemm-col2im"
    description = (
        "one GEMM Wᵀ·X into columns (batch folded in, or one per image), then col2im scatter-add"
    )

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
