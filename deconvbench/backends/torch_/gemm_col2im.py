"""``gemm-col2im``: one GEMM ``Wᵀ·X`` into columns, then col2im scatter-adds them.

The Caffe formulation, and PyTorch's own slow path. The GEMM contracts input channels for
every (output channel, kernel tap, input position) at once, giving columns of size
``Cout·∏kernel × ∏input`` per sample; col2im adds each column entry at output position
``i·stride − padding + k·dilation``.

* GEMM: with one group and at least ``FOLD_BATCH_BELOW`` input positions, one GEMM per
  sample (``bmm`` over the batch, the weight broadcast without a copy). Smaller inputs (the
  first layers of a generator: 1×1, 4×4) make those GEMMs too thin to run well, so the
  batch is folded into the GEMM's long side instead (one GEMM per group) at the price of
  two transposing copies.
* col2im: ``F.fold`` for 2-D and for 1-D (as 2-D with a unit height). ``F.fold`` has no
  3-D form, so 3-D scatter-adds one strided slice per kernel tap, which is how col2im
  loops anyway. When ``output_padding ≥ stride`` (possible with dilation) the output holds
  more block positions than there are inputs and fold refuses it; fold then fills the
  uncropped output and the crop/extension to the requested size follows.

Backward is the classic pair, written out (:func:`backward`): grad_output's columns
``im2col(grad_output)``, then grad_input ``W·cols`` and grad_weight ``cols·Xᵀ``. Autograd
over the forward graph computes the same, but through fold's backward, whose CUDA kernel
aten launches once per batch entry (``im2col_out_cuda_template`` loops over the batch),
and, on large images, through the broadcast weight's per-sample gradients, summed after:
on the H200 that backward took a flat 0.39-0.51 ms from g1 to g5, a 100-fold range of
work, at 0.18-0.41× torch's own. Here the columns of the whole batch are one strided view
of the padded grad_output, copied once, and each gradient is one GEMM per group (dcgan on
2 CPU cores, runs alternating: 0.92-0.94× native's backward, against 0.86-0.88 by
autograd).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)

from ...problem import Pass, Problem
from ..numpy_._layout import tap_slices
from ._common import bias_view, pad_amounts, spatial_dims
from ._strategy import AutogradStrategy, Grads

FOLD_BATCH_BELOW = 256
"""Input positions below which the batch is folded into one GEMM (measured on CPU)."""


def columns(problem: Problem, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(N, Cout·∏kernel, ∏input)``: every input position times every weight column."""
    g, n = problem.groups, problem.batch
    cin_g = problem.in_channels // g
    rows = (problem.out_channels // g) * math.prod(problem.kernel)
    positions = math.prod(problem.input)
    w = weight.reshape(g, cin_g, rows).transpose(1, 2)  # (g, rows, Cin/g), a view
    if g == 1 and positions >= FOLD_BATCH_BELOW:
        return torch.bmm(w.expand(n, rows, cin_g), x.reshape(n, cin_g, positions))
    xg = x.reshape(n, g, cin_g, positions).permute(1, 2, 0, 3).reshape(g, cin_g, n * positions)
    cols = torch.bmm(w, xg)  # (g, rows, N·P)
    return cols.reshape(g, rows, n, positions).permute(2, 0, 1, 3).reshape(n, g * rows, positions)


def _fold(problem: Problem, cols: torch.Tensor) -> torch.Tensor:
    """col2im with ``F.fold``; 1-D runs as 2-D with a unit height."""
    lift = problem.ndim == 1
    one: tuple[int, ...] = (1,) if lift else ()
    zero: tuple[int, ...] = (0,) if lift else ()
    kernel, stride, dilation = (one + t for t in (problem.kernel, problem.stride, problem.dilation))
    padding, output_padding = (zero + t for t in (problem.padding, problem.output_padding))
    output = one + problem.output
    inputs = one + problem.input
    if all(op < s for op, s in zip(output_padding, stride, strict=True)):
        y = F.fold(cols, output, kernel, dilation=dilation, padding=padding, stride=stride)
    else:
        full = tuple(
            (i - 1) * s + d * (k - 1) + 1
            for i, s, d, k in zip(inputs, stride, dilation, kernel, strict=True)
        )
        y = F.fold(cols, full, kernel, dilation=dilation, padding=0, stride=stride)
        crop = [-p for p in padding]
        extend = [op - p for op, p in zip(output_padding, padding, strict=True)]
        y = F.pad(y, pad_amounts(crop, extend))
    return y.reshape(problem.batch, problem.out_channels, *problem.output) if lift else y


def _scatter_taps(problem: Problem, cols: torch.Tensor) -> torch.Tensor:
    """col2im for any dimension: one strided slice-add per kernel tap."""
    blocks = cols.reshape(problem.batch, problem.out_channels, *problem.kernel, *problem.input)
    y = cols.new_zeros(problem.y_shape)
    everything = (slice(None), slice(None))
    for tap in itertools.product(*(range(k) for k in problem.kernel)):
        found = tap_slices(problem, tap)
        if found is None:  # the tap lands entirely in the cropped padding
            continue
        ins, outs = found
        y[(*everything, *outs)] += blocks[(*everything, *tap, *ins)]
    return y


def forward(
    problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    cols = columns(problem, x, weight)
    y = _fold(problem, cols) if problem.ndim < 3 else _scatter_taps(problem, cols)
    if bias is not None:
        y.add_(bias_view(bias, problem.ndim))  # in place: neither fold nor add keeps y
    return y


def grad_output_columns(problem: Problem, grad_output: torch.Tensor) -> torch.Tensor:
    """``(N, Cout·∏K, ∏I)``: grad_output at ``o = i·s − p + k·d`` (0 outside the output),
    rows ``(co, *k)``, as one copy of a strided view of the padded grad_output."""
    nd = problem.ndim
    spans = [d * (k - 1) + 1 for k, d in zip(problem.kernel, problem.dilation, strict=True)]
    steps = zip(problem.input, problem.stride, spans, strict=True)
    lengths = [(i - 1) * s + span for i, s, span in steps]
    # index q = o + p: p zeros in front, and the end padded (or cropped) to the last q
    back = [q - p - o for q, p, o in zip(lengths, problem.padding, problem.output, strict=True)]
    view = F.pad(grad_output, pad_amounts(problem.padding, back))
    for dim, (span, s) in enumerate(zip(spans, problem.stride, strict=True)):
        view = view.unfold(2 + dim, span, s)  # (N, C, *I, *spans): windows, a view
    view = view[(..., *(slice(None, None, d) for d in problem.dilation))]  # taps d apart
    order = (0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))  # (N, C, *K, *I)
    return view.permute(order).reshape(problem.batch, -1, math.prod(problem.input))


def backward(
    problem: Problem, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> Grads:
    """grad_input ``W·cols`` and grad_weight ``Σ_n X_n·cols_nᵀ``, one GEMM per group with
    the batch folded into it (the columns and x laid ``(g, ·, N·∏I)``, a copy each), or,
    at ``FOLD_BATCH_BELOW`` input positions and more with one group, grad_input as one
    GEMM per sample straight into NCHW, as the forward does."""
    g, n = problem.groups, problem.batch
    cin_g = problem.in_channels // g
    positions = math.prod(problem.input)
    cols = grad_output_columns(problem, grad_output).reshape(n, g, -1, positions)
    w = weight.reshape(g, cin_g, -1)
    folded_cols = cols.permute(1, 2, 0, 3).reshape(g, -1, n * positions)  # (g, R, N·P)
    folded_x = x.reshape(n, g, cin_g, positions).permute(1, 2, 0, 3).reshape(g, cin_g, -1)
    grad_w = torch.bmm(folded_x, folded_cols.transpose(1, 2)).reshape(problem.weight_shape)
    if g == 1 and positions >= FOLD_BATCH_BELOW:
        grad_x = torch.matmul(w, cols).reshape(problem.x_shape)
    else:
        grad_x = torch.bmm(w, folded_cols).reshape(g, cin_g, n, positions)
        grad_x = grad_x.permute(2, 0, 1, 3).reshape(problem.x_shape)
    grad_b = grad_output.sum((0, *spatial_dims(problem))) if problem.bias else None
    return grad_x, grad_w, grad_b


def workspace_elements(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a pass (see :meth:`GemmCol2im.workspace_bytes`)."""
    x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
    b = problem.out_channels if problem.bias else 0
    cols = problem.batch * problem.out_channels * math.prod(problem.kernel)
    cols *= math.prod(problem.input)
    folded = problem.groups != 1 or math.prod(problem.input) < FOLD_BATCH_BELOW
    copies = cols + x if folded else 0  # the batch-folded x and the un-permuted columns
    if pass_ == "forward":
        return x + w + b + cols + copies + 2 * y
    # the padded grad_output, the columns and their batch-folded copy, x's folded copy,
    # grad_input before its layout copy, and the gradients
    return x + w + y + b + y + 2 * cols + 2 * x + (x + w + b)


class GemmCol2im(AutogradStrategy):
    algorithm = "gemm-col2im"
    description = "GEMM into columns, then col2im (F.fold; per-tap slice adds in 3-D)"
    explicit_backward = staticmethod(backward)

    def forward(
        self, problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return forward(problem, x, weight, bias)

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Operands' copies, the columns ``N·Cout·∏K·∏I`` (and, with the batch folded,
        their permuted copy), y and fold's padded copy. Backward (:func:`backward`): the
        padded grad_output, its columns and their batch-folded copy, x's folded copy,
        grad_input before its layout copy, and the gradients."""
        return workspace_elements(problem, pass_) * problem.itemsize
