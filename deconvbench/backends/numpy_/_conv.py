"""N-d building blocks shared by the GEMM-based numpy strategies.

Every helper works in the grouped layout of :mod:`._layout`: activations are
``(g, C, N, *spatial)`` (any strides; a view of an NCHW array is fine) and the result of an
im2col is a matrix ``(g, C·∏K, N·∏Q)`` whose rows are ordered ``(c, *k)`` and whose columns
are ``(n, *q)``, so that a channel-and-tap contraction is one batched matmul over the group
axis with the batch folded into the long side. The same helpers also take the *batch-last*
variant ``(g, C, *spatial, N)`` (columns ``(*q, n)``): there a window's last spatial axis and
the batch form one contiguous run, so copies stay efficient on 4×4 inputs, and shifting a
window is shifting a flat index.

The pieces:

- :func:`embed` places an array at strided, shifted positions inside a zero buffer; with
  step 1 it pads (negative offsets crop), with step s it zero-dilates and pads in one copy.
- :func:`windows` is the im2col *view* (no copy): every kernel window, with dilation and
  stride, from ``numpy.lib.stride_tricks.sliding_window_view``.
- :func:`im2col` copies that view into a GEMM operand; :func:`correlate` is im2col + GEMM.
- :func:`grouped_view` and :func:`new_output` give grouped views of NCHW arrays, so results
  can be written straight into the NCHW output without a separate layout pass.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from ...problem import Problem

A = NDArray[np.floating]


def grouped_view(a: A, groups: int, batch_last: bool = False) -> A:
    """``(N, C, *S)`` → view ``(g, C/g, N, *S)``, or ``(g, C/g, *S, N)`` when ``batch_last``.

    No copy: writes through the view land in ``a``.
    """
    n, c = a.shape[:2]
    return np.moveaxis(a.reshape(n, groups, c // groups, *a.shape[2:]), 0, -1 if batch_last else 2)


def new_output(shape: Sequence[int], groups: int, dtype: np.dtype[np.floating]) -> tuple[A, A]:
    """An uninitialised NCHW array ``(N, C, *S)`` and its grouped view ``(g, C/g, N, *S)``.

    Not zero-filled, to save a pass over the output: callers write every element.
    """
    out = np.empty(tuple(shape), dtype=dtype)
    return out, grouped_view(out, groups)


def write_phase(yg: A, outs: tuple[slice, ...], z: A, bias: A | None) -> None:
    """Write one output phase ``z`` (g, Cout_g, N, *M) to its interleaved positions, plus bias.

    The bias is added on the way in (``out=``), saving a second pass over the output.
    """
    target = (..., *outs)
    if bias is None:
        yg[target] = z
    else:
        np.add(z, bias, out=yg[target])


def bias_view(bias: A, groups: int, ndim: int) -> A:
    """Bias ``(C,)`` shaped to broadcast against a grouped ``(g, C/g, N, *S)`` array."""
    return bias.reshape(groups, -1, 1, *(1,) * ndim)


def placement(size: int, length: int, offset: int, step: int) -> tuple[slice, slice] | None:
    """Source and destination slices putting ``src[i]`` at ``offset + i·step`` in ``[0, length)``.

    Returns None when no source index lands inside the destination.
    """
    first = 0 if offset >= 0 else (-offset + step - 1) // step  # smallest i landing at >= 0
    last = min(size - 1, (length - 1 - offset) // step)
    if last < first:
        return None
    start = offset + first * step
    return slice(first, last + 1), slice(start, start + (last - first) * step + 1, step)


def spatial_axes(ndim_total: int, nd: int, batch_last: bool) -> tuple[int, ...]:
    """Spatial axes of a grouped array: ``(g, C, N, *S)`` or, batch-last, ``(g, C, *S, N)``."""
    first = 2 if batch_last else ndim_total - nd
    return tuple(range(first, first + nd))


def embed(
    src: A,
    lengths: Sequence[int],
    offsets: Sequence[int],
    steps: Sequence[int] | None = None,
    batch_last: bool = False,
) -> A:
    """A new C-contiguous zero array with ``src[..., i]`` at ``offset + i·step`` per spatial dim.

    The spatial axes are the trailing ``len(lengths)`` ones, or axes ``2 … 2+nd`` when
    ``batch_last``; the other axes are copied as they are. Source positions that fall
    outside ``[0, length)`` are dropped (negative padding crops).
    """
    nd = len(lengths)
    steps = (1,) * nd if steps is None else steps
    axes = spatial_axes(src.ndim, nd, batch_last)
    shape = list(src.shape)
    for axis, length in zip(axes, lengths, strict=True):
        shape[axis] = length
    dst = np.zeros(shape, dtype=src.dtype)
    src_index: list[slice] = [slice(None)] * src.ndim
    dst_index: list[slice] = [slice(None)] * src.ndim
    for axis, length, offset, step in zip(axes, lengths, offsets, steps, strict=True):
        sl = placement(src.shape[axis], length, offset, step)
        if sl is None:
            return dst  # nothing of src lands inside
        src_index[axis], dst_index[axis] = sl
    dst[tuple(dst_index)] = src[tuple(src_index)]
    return dst


def windows(
    src: A,
    kernel: Sequence[int],
    dilation: Sequence[int],
    stride: Sequence[int],
    out: Sequence[int],
    batch_last: bool = False,
) -> A:
    """The im2col view of ``src``, without copying.

    ``src`` ``(g, C, N, *S)`` gives ``view[g, c, *k, n, *q] = src[g, c, n, *(q·s + k·d)]``;
    batch-last ``src`` ``(g, C, *S, N)`` gives ``view[g, c, *k, *q, n]``, whose ``(q_last, n)``
    runs are contiguous in the source (long copy runs even for small spatial sizes). The
    caller makes sure every window fits: ``S ≥ (Q−1)·s + (K−1)·d + 1`` per dimension.
    """
    nd = len(kernel)
    axes = spatial_axes(src.ndim, nd, batch_last)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    for axis, span, q, s in zip(axes, spans, out, stride, strict=True):
        if src.shape[axis] < (q - 1) * s + span:
            raise ValueError(
                f"windows: spatial size {src.shape[axis]} too small for {q} windows of {span}"
            )
    view = sliding_window_view(src, spans, axis=axes)  # (..., *span) appended
    index: list[slice] = [slice(None)] * src.ndim
    for axis, q, s in zip(axes, out, stride, strict=True):
        index[axis] = slice(0, (q - 1) * s + 1, s)  # every stride-th window position
    index += [slice(None, None, d) for d in dilation]  # every d-th element of a window
    view = view[tuple(index)]
    taps = tuple(range(src.ndim, src.ndim + nd))
    batch = (src.ndim - 1,) if batch_last else (2,)
    order = (0, 1, *taps, *batch, *axes) if not batch_last else (0, 1, *taps, *axes, *batch)
    return view.transpose(order)


def im2col(
    src: A,
    kernel: Sequence[int],
    dilation: Sequence[int],
    stride: Sequence[int],
    out: Sequence[int],
    batch_last: bool = False,
) -> A:
    """Copy of :func:`windows` as a GEMM operand ``(g, C·∏K, N·∏Q)`` (columns ``(*q, n)``
    when ``batch_last``)."""
    view = windows(src, kernel, dilation, stride, out, batch_last)
    g, c = view.shape[:2]
    return np.ascontiguousarray(view).reshape(g, c * math.prod(kernel), -1)


def correlate(
    src: A,
    weight: A,
    kernel: Sequence[int],
    dilation: Sequence[int],
    stride: Sequence[int],
    out: Sequence[int],
) -> A:
    """Ordinary (cross-)correlation by im2col + one batched GEMM.

    ``result[g, co, n, *q] = Σ_{c,k} weight[g, co, (c, *k)] · src[g, c, n, *(q·s + k·d)]``
    with ``weight`` a ``(g, Co, C·∏K)`` matrix; returns ``(g, Co, N, *Q)``.
    """
    cols = im2col(src, kernel, dilation, stride, out)
    y: A = np.matmul(weight, cols)
    return y.reshape(*y.shape[:2], src.shape[2], *out)


def flip_kernel(w: A, ndim: int) -> A:
    """View of ``w`` with its trailing ``ndim`` (kernel) axes reversed."""
    return w[(..., *(slice(None, None, -1),) * ndim)]


def padded_grad_output(problem: Problem, grad_output: A) -> A:
    """grad_output padded by p on the left, so ``o = i·s − p + k·d`` indexes it at ``i·s + k·d``.

    Length ``(I−1)·s + d·(K−1) + 1`` per dimension: every position some input reaches.
    """
    lengths = [
        (i - 1) * s + d * (k - 1) + 1
        for i, s, d, k in zip(
            problem.input, problem.stride, problem.dilation, problem.kernel, strict=True
        )
    ]
    return embed(grouped_view(grad_output, problem.groups), lengths, problem.padding)


def tensor_elements(problem: Problem) -> tuple[int, int, int, int]:
    """Elements of x, weight, y and bias (0 without one): the terms of the size estimates."""
    bias = problem.out_channels if problem.bias else 0
    return (
        math.prod(problem.x_shape),
        math.prod(problem.weight_shape),
        math.prod(problem.y_shape),
        bias,
    )


def padded_grad_output_elements(problem: Problem) -> int:
    """Size of :func:`padded_grad_output`."""
    return (
        problem.batch
        * problem.out_channels
        * math.prod(
            (i - 1) * s + d * (k - 1) + 1
            for i, s, d, k in zip(
                problem.input, problem.stride, problem.dilation, problem.kernel, strict=True
            )
        )
    )


def grad_output_cols_elements(problem: Problem) -> int:
    """Size of :func:`grad_output_cols`: ``Cout·∏K`` rows of ``N·∏I`` columns."""
    return (
        problem.batch * problem.out_channels * math.prod(problem.kernel) * math.prod(problem.input)
    )


def grad_output_cols(problem: Problem, grad_output: A) -> A:
    """``(g, Cout/g·∏K, N·∏I)``: grad_output at ``o = i·s − p + k·d`` (0 outside the output).

    Row ``(co, *k)``, column ``(n, *i)``: matches the natural weight layout
    ``(Cin, Cout/g, *K)``, so both backward GEMMs use the weight and produce the weight
    gradient without any reordering.
    """
    return im2col(
        padded_grad_output(problem, grad_output),
        problem.kernel,
        problem.dilation,
        problem.stride,
        problem.input,
    )


def grad_output_cols_batch_last(problem: Problem, grad_output: A) -> A:
    """:func:`grad_output_cols` with batch-last columns ``(*i, n)``, built through grad_output's
    phase planes so that every copy moves runs of (last input extent × batch) values.

    Padded position ``i·s + k·d`` of a dimension lies in phase plane ``r = k·d mod s`` at
    ``i + ⌊k·d / s⌋``: each plane (batch-last, zero where the padding is) holds every s-th
    padded position, and each tap's rows are a *unit-stride* window of one plane. On 4×4
    and 8×8 images the strided gather of :func:`grad_output_cols` moves runs of 4 or 8
    values; here they are 64 or 128 long.
    """
    g, n = problem.groups, problem.batch
    cout_g = problem.out_channels // g
    lengths = [
        -(-((i - 1) * s + d * (k - 1) + 1) // s)  # plane length: ⌈padded length / s⌉
        for i, s, d, k in zip(
            problem.input, problem.stride, problem.dilation, problem.kernel, strict=True
        )
    ]
    gyg = grouped_view(grad_output, g)  # (g, Cout_g, N, *O)
    planes = np.zeros((g, cout_g, *problem.stride, *lengths, n), grad_output.dtype)
    for rs in itertools.product(*(range(s) for s in problem.stride)):
        src: list[slice] = []
        dst: list[slice] = []
        for r, s, p, size, length in zip(
            rs, problem.stride, problem.padding, problem.output, lengths, strict=True
        ):
            first = (r - p) % s  # the first output o with o + p ≡ r (mod s)
            count = len(range(first, size, s))
            sl = placement(count, length, (first + p - r) // s, 1) if count else None
            if sl is None:
                break
            src.append(slice(first + sl[0].start * s, first + (sl[0].stop - 1) * s + 1, s))
            dst.append(sl[1])
        else:
            planes[(slice(None), slice(None), *rs, *dst)] = np.moveaxis(gyg[(..., *src)], 2, -1)
    cols = np.empty((g, cout_g, *problem.kernel, *problem.input, n), grad_output.dtype)
    for tap in itertools.product(*(range(k) for k in problem.kernel)):
        offsets = [k * d for k, d in zip(tap, problem.dilation, strict=True)]
        rs = tuple(o % s for o, s in zip(offsets, problem.stride, strict=True))
        window = tuple(
            slice(o // s, o // s + i)
            for o, s, i in zip(offsets, problem.stride, problem.input, strict=True)
        )
        cols[(slice(None), slice(None), *tap)] = planes[(slice(None), slice(None), *rs, *window)]
    return cols.reshape(g, cout_g * math.prod(problem.kernel), -1)
