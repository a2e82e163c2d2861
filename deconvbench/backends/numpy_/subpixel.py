"""``numpy/subpixel``: phase (polyphase) decomposition into s^d dense convolutions.

Output position ``o`` belongs to phase ``rho = (o + p) mod s`` per dimension; only taps with
``k·d ≡ rho (mod s)`` reach it, and on those taps the transposed convolution is a dense
stride-1 correlation of the *undilated* input with a sub-kernel (dilation ``d / gcd(s, d)``)
— see :class:`._layout.Phase`. No product ever meets an inserted zero. Each phase's result is
written to its interleaved output positions with one strided assignment straight into the
NCHW output (the pixel shuffle); phases without taps (s > k, or s and d sharing a factor)
only get the bias.

A phase's dense correlation reads the (once padded, batch-last) input and is lowered to
GEMMs in one of two ways, whichever the cost model :func:`_shifted_is_cheaper` prefers:

- ``im2col``: copy the phase's windows and run one GEMM with K = Cin/g · (taps of the
  phase) — exact work, but the copy holds Cin/g · taps values per output;
- ``shifted``: one GEMM per tap (K = Cin/g) on a shifted, uncopied view of the input,
  accumulated — no copy, some wasted columns; the winner when Cout is small (RGB layers).

Either way the correlation runs over the *padded* input: when the input is smaller than
the kernel (a 1×1 input, say) most products meet padding, and ``gemm-col2im`` is the
better strategy there. The work is F0 when the input is large against the kernel and s
divides the kernel extent.

Backward by phase too. ``grad_input[i] = Σ_rho Σ_{k∈rho} gy_rho[i + t_k] · w[k]``, where
``gy_rho`` is the phase's strided slice of grad_output: each phase fills the rows of its own
taps in one ``(Cout/g · ∏K, N · ∏I)`` column buffer (dense windows of that slice), and since
every tap belongs to exactly one phase, the buffer is complete after the phase loop. Then
grad_input is one GEMM with the weight in its own layout, and grad_weight, whose every tap
sees exactly its phase's slice, is one GEMM ``X · colsᵀ``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import (
    bias_view,
    embed,
    grad_output_cols_elements,
    grouped_view,
    im2col,
    new_output,
    padded_grad_output,
    padded_grad_output_elements,
    tensor_elements,
    windows,
    write_phase,
)
from ._layout import (
    Phase,
    bias_grad,
    from_grouped,
    phase_tap_slices,
    phases,
    to_grouped,
    weight_grouped,
)
from ._strategy import NumpyStrategy


def _input_padding(dim_phases: list[Phase], size_in: int) -> tuple[int, int]:
    """Zero padding of the input so every phase's windows stay inside it.

    Phase outputs ``m ∈ [m_lo, m_hi]`` read inputs ``m − t_k ∈ [m_lo − t_last, m_hi − t0]``.
    """
    left = right = 0
    for ph in dim_phases:
        if ph.taps and ph.count:
            left = max(left, ph.t_last - ph.m_lo)
            right = max(right, ph.m_lo + ph.count - 1 - ph.t0 - (size_in - 1))
    return left, right


# Costs of one element of memory traffic, in GEMM flops, measured on a 2-core AVX-512
# machine (BLAS sgemm ≈ 90 GFLOP/s): an im2col element costs 0.3–1.5 ns (a strided gather
# whose buffer often outgrows the caches, then read again by the GEMM), an accumulated
# element ≈ 0.13 ns (a unit-stride add). They only decide which lowering a phase gets.
IM2COL_ELEMENT_FLOPS = 60.0
ADD_ELEMENT_FLOPS = 12.0


def _phase_im2col(xp: Array, Wg: Array, combo: tuple[Phase, ...], starts: list[int]) -> Array:
    """One phase as im2col of its windows + one GEMM with K = Cin/g · ∏J.

    Returns the phase's outputs ``(g, Cout/g, *M, N)``.
    """
    g, cout_g, nd = Wg.shape[0], Wg.shape[2], len(combo)
    counts = [ph.count for ph in combo]
    src = xp[(slice(None), slice(None), *(slice(a, None) for a in starts))]
    cols = im2col(
        src, [ph.taps for ph in combo], [ph.tstep for ph in combo], (1,) * nd, counts, True
    )  # (g, Cin_g·∏J, ∏M·N)
    # the phase's sub-kernel, flipped to match the windows, as (g, Cin_g·∏J, Cout_g):
    # with Cout innermost the gather reads the weight in cache-line-friendly order
    sub = Wg[(slice(None), slice(None), slice(None), *(ph.kernel_slice for ph in combo))]
    flip = (slice(None, None, -1),) * nd
    Wm = np.ascontiguousarray(np.moveaxis(sub[(..., *flip)], 2, -1)).reshape(g, -1, cout_g)
    z: Array = np.matmul(Wm.transpose(0, 2, 1), cols)  # (g, Cout_g, ∏M·N)
    return z.reshape(g, cout_g, *counts, xp.shape[-1])


def _flat_strides(xp_shape: tuple[int, ...]) -> list[int]:
    """Element strides of the spatial axes of a C-contiguous ``(g, C, *S, N)`` array."""
    return [math.prod(xp_shape[3 + i :]) for i in range(len(xp_shape) - 3)]


def _tap_ranges(
    combo: tuple[Phase, ...], sizes_in: Sequence[int], strides: list[int], n: int
) -> list[tuple[tuple[int, ...], int, int, int]]:
    """Per tap of the phase that feeds an output: ``(tap index j, shift, first, end)``.

    Columns index the phase's output grid flattened with the input's strides (the trailing
    spatial dimensions at their padded extent). Tap j reads input ``m − t_j``, which sits
    ``shift`` columns after what the flipped first tap reads. Only columns in
    ``[first, end)`` — from the first to the last output whose input for this tap is real
    (not padding) — are computed: outside it the tap adds nothing, so heavy padding or an
    input smaller than the kernel costs no work.
    """
    ranges = []
    for js in itertools.product(*(range(ph.taps) for ph in combo)):
        sl = [phase_tap_slices(ph, j, i) for ph, j, i in zip(combo, js, sizes_in, strict=True)]
        if any(x is None for x in sl):
            continue
        ms = [x[1] for x in sl if x is not None]
        first = sum(m.start * st for m, st in zip(ms, strides, strict=True))
        end = sum((m.stop - 1) * st for m, st in zip(ms, strides, strict=True)) + n
        shift = sum(
            (ph.taps - 1 - j) * ph.tstep * st for ph, j, st in zip(combo, js, strides, strict=True)
        )
        ranges.append((js, shift, first, end))
    return ranges


def _phase_shifted(
    xp: Array, Wg: Array, combo: tuple[Phase, ...], starts: list[int], sizes_in: Sequence[int]
) -> Array:
    """One phase as one GEMM per tap (K = Cin/g) on shifted views of the input, accumulated.

    In the C-contiguous batch-last buffer a shift of the window is a shift of the flat
    (spatial, batch) index, so a tap's operand is a column slice of ``(Cin_g, ∏S·N)``: no
    copy. The GEMMs run over the full padded width of the trailing spatial dimensions (the
    extra columns are dropped at the end), trading those columns and ∏J output-sized adds
    for the im2col copy: cheaper when Cout is small against Cin, or the input tiny.
    """
    g, cin_g, cout_g = Wg.shape[:3]
    n, nd = xp.shape[-1], len(combo)
    flat = xp.reshape(g, cin_g, -1)
    strides = _flat_strides(xp.shape)
    counts = [ph.count for ph in combo]
    base = sum(a * st for a, st in zip(starts, strides, strict=True))
    # the phase's taps gathered once as (*J, g, Cin_g, Cout_g): each tap's matrix is then
    # contiguous (BLAS takes it transposed), and the gather reads the weight in order
    sub = Wg[(slice(None), slice(None), slice(None), *(ph.kernel_slice for ph in combo))]
    Wj = np.ascontiguousarray(np.moveaxis(sub, tuple(range(3, 3 + nd)), tuple(range(nd))))
    acc = np.zeros((g, cout_g, counts[0] * strides[0]), xp.dtype)
    for js, shift, first, end in _tap_ranges(combo, sizes_in, strides, n):
        src = flat[..., base + shift + first : base + shift + end]
        dst = acc[..., first:end]
        np.add(dst, np.matmul(Wj[js].transpose(0, 2, 1), src), out=dst)
    grid = acc.reshape(g, cout_g, counts[0], *xp.shape[3 : 2 + nd], n)
    return grid[(slice(None), slice(None), slice(None), *(slice(0, c) for c in counts[1:]))]


def _shifted_is_cheaper(
    combo: tuple[Phase, ...],
    xp_shape: tuple[int, ...],
    cin_g: int,
    cout_g: int,
    sizes_in: Sequence[int],
) -> bool:
    """Compare the two lowerings of a phase: GEMM flops plus memory traffic.

    im2col computes exactly the phase's outputs (padding included) but copies
    ``Cin_g·∏J`` values per output; shifted computes each tap over its column range and
    adds ``Cout_g`` values per column.
    """
    n = xp_shape[-1]
    taps = math.prod(ph.taps for ph in combo)
    outputs = math.prod(ph.count for ph in combo) * n
    im2col = (2.0 * cout_g * cin_g + IM2COL_ELEMENT_FLOPS * cin_g) * taps * outputs
    columns = sum(
        end - first for *_, first, end in _tap_ranges(combo, sizes_in, _flat_strides(xp_shape), n)
    )
    shifted = (2.0 * cout_g * cin_g + ADD_ELEMENT_FLOPS * cout_g) * columns
    return shifted < im2col


Lowering = Literal["auto", "im2col", "shifted"]


def forward(
    problem: Problem, x: Array, weight: Array, bias: Array | None, lowering: Lowering = "auto"
) -> Array:
    """The transposed convolution by phases; ``lowering`` forces how every phase's dense
    convolution becomes GEMMs (``auto`` picks the cheaper one per phase)."""
    g, nd = problem.groups, problem.ndim
    per_dim = phases(problem)
    pads = [_input_padding(ph, i) for ph, i in zip(per_dim, problem.input, strict=True)]
    # batch-last padded input (g, Cin_g, *Ipadded, N): a window's (last spatial, batch) run
    # is contiguous, so the im2col copies move long runs even for 4x4 inputs, and a window
    # shift is a flat offset
    xp = embed(
        grouped_view(x, g, batch_last=True),
        [i + left + right for i, (left, right) in zip(problem.input, pads, strict=True)],
        [left for left, _ in pads],
        batch_last=True,
    )
    Wg = weight_grouped(weight, g)  # (g, Cin_g, Cout_g, *K)
    cin_g, cout_g = Wg.shape[1:3]
    y, yg = new_output(problem.y_shape, g, x.dtype)
    b = None if bias is None else bias_view(bias, g, nd)
    for combo in itertools.product(*per_dim):
        if not all(ph.count for ph in combo):
            continue  # no output position in this phase
        outs = tuple(ph.out_slice for ph in combo)
        if not all(ph.taps for ph in combo):
            yg[(..., *outs)] = 0 if b is None else b
            continue
        # output m_lo + q with flipped tap j' reads input m_lo − t_last + q + j'·tstep
        starts = [ph.m_lo - ph.t_last + left for ph, (left, _) in zip(combo, pads, strict=True)]
        shifted = (
            _shifted_is_cheaper(combo, xp.shape, cin_g, cout_g, problem.input)
            if lowering == "auto"
            else lowering == "shifted"
        )
        if shifted:
            z = _phase_shifted(xp, Wg, combo, starts, problem.input)
        else:
            z = _phase_im2col(xp, Wg, combo, starts)
        z = np.moveaxis(z, -1, 2)  # view (g, Cout_g, N, *M)
        write_phase(yg, outs, z, b)
    return y


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    g = problem.groups
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    per_dim = phases(problem)
    # grad_output padded by p on the left: phase rho's slice gy_rho[m] = gy[m·s + rho − p]
    # sits at m·s + rho, for every m in [t0, I − 1 + t_last] any tap of the phase reads.
    gyp = padded_grad_output(problem, grad_output)
    cols = np.empty((g, cout_g, *problem.kernel, problem.batch, *problem.input), x.dtype)
    for combo in itertools.product(*per_dim):
        if not all(ph.taps for ph in combo):
            continue
        gy_rho = gyp[(..., *(slice(ph.t0 * ph.stride + ph.rho, None, ph.stride) for ph in combo))]
        view = windows(
            gy_rho,
            [ph.taps for ph in combo],
            [ph.tstep for ph in combo],
            (1,) * len(combo),
            problem.input,
        )  # (g, Cout_g, *J, N, *I)
        cols[(slice(None), slice(None), *(ph.kernel_slice for ph in combo))] = view
    cols2 = cols.reshape(g, cout_g * math.prod(problem.kernel), -1)
    W = weight.reshape(g, cin_g, -1)  # (g, Cin_g, Cout_g·∏K): natural layout
    gx = np.matmul(W, cols2).reshape(g, cin_g, problem.batch, *problem.input)
    X = to_grouped(x, g).reshape(g, cin_g, -1)
    gw = np.matmul(X, cols2.transpose(0, 2, 1))
    return from_grouped(gx), gw.reshape(weight.shape), bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call.

    Forward: the padded batch-last input, the output, and the worst phase under either
    lowering (``auto`` may pick either): im2col holds the phase's columns, its sub-kernel
    and two phase results (one is computed while the previous phase's is alive); shifted
    holds an accumulator over the padded width, the previous phase's and one tap's GEMM.
    Backward: padded grad_output, its columns, and three input-sized arrays.
    """
    x, w, y, b = tensor_elements(problem)
    if pass_ == "backward":
        gcols = grad_output_cols_elements(problem)
        return padded_grad_output_elements(problem) + gcols + 3 * x + w + b
    n, cin, cout = problem.batch, problem.in_channels, problem.out_channels
    per_dim = phases(problem)
    padded = [
        i + sum(_input_padding(dim, i)) for dim, i in zip(per_dim, problem.input, strict=True)
    ]
    counts = [max(ph.count for ph in dim) for dim in per_dim]
    taps = math.prod(max(ph.taps for ph in dim) for dim in per_dim)
    outputs = n * math.prod(counts)
    im2col = cin * taps * outputs + w + 2 * cout * outputs
    shifted = 3 * cout * n * counts[0] * math.prod(padded[1:]) + w
    return n * cin * math.prod(padded) + y + max(im2col, shifted)


class Subpixel(NumpyStrategy):
    algorithm = "subpixel"
    description = "phase decomposition: s^d dense sub-convolutions (one GEMM each), interleaved"

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
