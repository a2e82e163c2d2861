"""``numpy/subpixel-fused``: sub-pixel in the ESPCN form, one GEMM for every phase.

Where ``subpixel`` runs s^d small correlations (one per phase, each with its own
sub-kernel), this one pads every phase's sub-kernel with zeros to a common window
(:mod:`._fused`) and stacks them as the output channels of *one* ordinary correlation:
``P·Cout`` channels (P = ∏s), over the once-padded input, lowered to one im2col and one
GEMM. A depth-to-space (the pixel shuffle) then writes phase ``rho``'s channels to the
output positions ``m·s + rho − p``, cropped to ``[0, O)``, with the bias added on the way.

**Wasted products.** When s does not divide k the phases have sub-kernels of different
sizes, and the zeros that pad the short ones to the common size are multiplied like any
weight: a fraction ``1 − ∏k / ∏(s·⌈k/s⌉)`` of the GEMM (:func:`._fused.wasted_fraction`;
k3 s2: 1 − 9/16 = 44% in 2-D; s > k: the phases no tap reaches are all zeros). With
dilation the common window is sampled at the gcd of the taps' offsets, so ``s = 1`` with
any dilation wastes nothing, but s and d sharing no factor fill the window's gaps with
zeros too. The row's note says the fraction (``engine: wasted_products=…``).

Backward in the same fused form. grad_output's space-to-depth ``G`` (each phase's
interleaved positions gathered back into its channels; positions the crop dropped are 0)
is the fused correlation's output gradient, so

- grad_weight is one GEMM ``G · colsᵀ`` (the forward's im2col of the input), un-padded
  back to the weight layout by gathering each tap's slot;
- grad_input is the correlation of ``G`` (zero-padded by the fused kernel's span) with the
  fused kernel flipped and its channels transposed: one im2col of ``G`` and one GEMM with
  ``K = P·Cout/g·∏L``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._conv import bias_view, embed, grouped_view, im2col, new_output, write_phase
from ._fused import (
    FusedAxis,
    Index,
    ReportsWaste,
    fused_axes,
    phase_count,
    phase_parts,
    tap_index,
)
from ._layout import bias_grad, from_grouped
from ._strategy import NumpyStrategy


def _progression(values: list[int]) -> slice:
    """The slice that picks ``values``, an arithmetic progression (of either sign)."""
    step = values[1] - values[0] if len(values) > 1 else 1
    stop = values[-1] + step
    return slice(values[0], None if stop < 0 else stop, step)


def _phase_slices(problem: Problem) -> list[tuple[Index, Index]]:
    """Per phase that owns taps: the taps as slices of the weight ``(g, Cin/g, Cout/g, *K)``
    and their slots in the fused weight ``(g, Cout/g, *s, Cin/g, *L)`` (with the phase's
    ``rho`` as integer indices). A phase's taps are every ``s/gcd(s, d)``-th tap and their
    slots every ``d/(gcd(s, d)·D)``-th slot backwards, so both are basic slices: the
    re-layout is ∏s strided copies, not a fancy-indexed scatter of the whole weight (dcgan
    g2, a 2M-element weight: 4.9 ms against 6.9; what is left is mostly the transposition
    of Cin and Cout)."""
    rhos, slots = tap_index(problem)
    per_dim = []
    for dim_rho, dim_slot, s in zip(rhos, slots, problem.stride, strict=True):
        dim = []
        for rho in range(s):
            ks = [k for k, r in enumerate(dim_rho) if r == rho]
            if ks:
                dim.append((rho, _progression(ks), _progression([dim_slot[k] for k in ks])))
        per_dim.append(dim)
    parts: list[tuple[Index, Index]] = []
    for combo in itertools.product(*per_dim):
        taps = (slice(None),) * 3 + tuple(k for _, k, _ in combo)
        fused = (slice(None),) * 2 + tuple(r for r, _, _ in combo) + (slice(None),)
        parts.append((taps, fused + tuple(q for _, _, q in combo)))
    return parts


def _fused_shape(problem: Problem, axes: tuple[FusedAxis, ...]) -> tuple[int, ...]:
    g = problem.groups
    cin_g, cout_g = problem.in_channels // g, problem.out_channels // g
    return (g, cout_g, *problem.stride, cin_g, *(a.slots for a in axes))


def fused_weight(problem: Problem, weight: Array) -> Array:
    """The zero-padded phase sub-kernels stacked: ``(g, Cout/g, *s, Cin/g, *L)``."""
    g = problem.groups
    wk = weight.reshape(g, weight.shape[0] // g, *weight.shape[1:])  # (g, Cin_g, Cout_g, *K)
    wf = np.zeros(_fused_shape(problem, fused_axes(problem)), weight.dtype)
    for taps, slots in _phase_slices(problem):
        wf[slots] = wk[taps].swapaxes(1, 2)  # (g, Cout_g, Cin_g, *J)
    return wf


def _padded_input(problem: Problem, x: Array) -> Array:
    """Batch-last ``(g, Cin/g, *(M + (L−1)·D), N)``: the input the fused correlation reads
    (a window's (last spatial, batch) run is contiguous: long copies on small inputs)."""
    axes = fused_axes(problem)
    return embed(
        grouped_view(x, problem.groups, batch_last=True),
        [a.count + (a.slots - 1) * a.dilation for a in axes],
        [a.pad[0] for a in axes],
        batch_last=True,
    )


def _input_cols(problem: Problem, x: Array) -> Array:
    """im2col of the padded input: ``(g, Cin/g·∏L, ∏M·N)``."""
    axes = fused_axes(problem)
    return im2col(
        _padded_input(problem, x),
        [a.slots for a in axes],
        [a.dilation for a in axes],
        (1,) * problem.ndim,
        [a.count for a in axes],
        batch_last=True,
    )


def forward(problem: Problem, x: Array, weight: Array, bias: Array | None) -> Array:
    g, nd = problem.groups, problem.ndim
    axes = fused_axes(problem)
    cout_g = problem.out_channels // g
    wf = fused_weight(problem, weight).reshape(g, cout_g * phase_count(problem), -1)
    z = np.matmul(wf, _input_cols(problem, x))  # (g, P·Cout_g, ∏M·N): the one GEMM
    z = z.reshape(g, cout_g, *problem.stride, *(a.count for a in axes), problem.batch)
    y, yg = new_output(problem.y_shape, g, x.dtype)
    b = None if bias is None else bias_view(bias, g, nd)
    for phase, outs in phase_parts(axes):  # depth-to-space, cropped, every output once
        write_phase(yg, outs, np.moveaxis(z[phase], -1, 2), b)
    return y


def space_to_depth(problem: Problem, grad_output: Array) -> Array:
    """grad_output gathered into the fused result's layout ``(g, Cout/g, *s, *M, N)``;
    the positions the forward's crop drops are zeros."""
    axes = fused_axes(problem)
    g = problem.groups
    shape = (g, problem.out_channels // g, *problem.stride, *(a.count for a in axes))
    gz = np.zeros((*shape, problem.batch), grad_output.dtype)
    gyg = grouped_view(grad_output, g)  # (g, Cout_g, N, *O)
    for phase, outs in phase_parts(axes):
        gz[phase] = np.moveaxis(gyg[(..., *outs)], 2, -1)
    return gz


def _grad_input(problem: Problem, gz: Array, wf: Array) -> Array:
    """``gx[i] = Σ_q gz[i + pad − q·D] · wf[q]``: a correlation of gz, zero-padded by the
    fused kernel's span, with the flipped fused kernel, channels transposed."""
    g, nd = problem.groups, problem.ndim
    axes = fused_axes(problem)
    cin_g = problem.in_channels // g
    rows = gz.shape[1] * phase_count(problem)  # P·Cout_g
    spans = [(a.slots - 1) * a.dilation for a in axes]
    e = embed(
        gz.reshape(g, rows, *gz.shape[2 + nd :]),
        [i + span for i, span in zip(problem.input, spans, strict=True)],
        [span - a.pad[0] for a, span in zip(axes, spans, strict=True)],
        batch_last=True,
    )
    cols = im2col(
        e, [a.slots for a in axes], [a.dilation for a in axes], (1,) * nd, problem.input, True
    )  # (g, P·Cout_g·∏L, ∏I·N)
    flip = (slice(None, None, -1),) * nd
    wb = wf.reshape(g, rows, cin_g, *(a.slots for a in axes))[(..., *flip)]
    wb = np.ascontiguousarray(wb.swapaxes(1, 2)).reshape(g, cin_g, -1)
    gx = np.matmul(wb, cols).reshape(g, cin_g, *problem.input, problem.batch)
    return from_grouped(np.moveaxis(gx, -1, 2))


def _grad_weight(problem: Problem, gz: Array, x: Array) -> Array:
    """One GEMM ``gz · colsᵀ``, then every tap's slot gathered back to ``(Cin, Cout/g, *K)``."""
    g = problem.groups
    cols = _input_cols(problem, x)
    gwf = np.matmul(gz.reshape(g, -1, cols.shape[-1]), cols.transpose(0, 2, 1))
    fused = gwf.reshape(_fused_shape(problem, fused_axes(problem)))
    # every tap belongs to exactly one phase: the phases fill gw
    gw = np.empty(
        (g, problem.in_channels // g, problem.out_channels // g, *problem.kernel), gwf.dtype
    )
    for taps, slots in _phase_slices(problem):
        gw[taps] = fused[slots].swapaxes(1, 2)
    return gw.reshape(problem.weight_shape)


def backward(
    problem: Problem, grad_output: Array, x: Array, weight: Array
) -> tuple[Array, Array, Array | None]:
    gz = space_to_depth(problem, grad_output)
    gw = _grad_weight(problem, gz, x)
    gx = _grad_input(problem, gz, fused_weight(problem, weight))
    return gx, gw, bias_grad(problem, grad_output)


def workspace(problem: Problem, pass_: Pass) -> int:
    """Peak elements of a call.

    Forward: the padded input, its columns, the fused weight, the fused result and y.
    Backward: grad_output's space-to-depth and the weight gradient throughout; then the
    larger of the grad_weight step (padded input, its columns, the fused gradient) and the
    grad_input step (the fused weight and its flipped copy, gz padded, its columns, gx and
    its NCHW copy).
    """
    axes = fused_axes(problem)
    n, cin, cout, p = problem.batch, problem.in_channels, problem.out_channels, phase_count(problem)
    slots, counts = math.prod(a.slots for a in axes), math.prod(a.count for a in axes)
    fused_w = cout * p * (cin // problem.groups) * slots
    padded = n * cin * math.prod(a.count + (a.slots - 1) * a.dilation for a in axes)
    cols = n * cin * slots * counts
    gz = n * cout * p * counts
    x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
    if pass_ == "forward":
        return padded + cols + fused_w + gz + y
    b = cout if problem.bias else 0
    span = [i + (a.slots - 1) * a.dilation for a, i in zip(axes, problem.input, strict=True)]
    gz_padded = n * cout * p * math.prod(span)
    gz_cols = n * cout * p * slots * math.prod(problem.input)
    weight_step = padded + cols + fused_w + w
    input_step = 2 * fused_w + gz_padded + gz_cols + 2 * x
    return gz + w + b + max(weight_step, input_step)


class SubpixelFused(ReportsWaste, NumpyStrategy):
    algorithm = "subpixel-fused"
    description = (
        "ESPCN sub-pixel: one correlation with s^d·Cout channels (phase sub-kernels "
        "zero-padded to one size) + pixel shuffle; wastes 1 − ∏k/∏(s·⌈k/s⌉) of its "
        "products when s ∤ k"
    )

    forward_fn = staticmethod(forward)
    backward_fn = staticmethod(backward)
    workspace_fn = staticmethod(workspace)
