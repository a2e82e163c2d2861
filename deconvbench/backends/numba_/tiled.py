"""``numba/tiled``: phase-decomposed gathers over channels-last tiles, 4×4 SIMD dot blocks.

Forward. Output ``o`` along a dimension receives the taps ``k`` with
``k·d ≡ o + p (mod s)``: its *phase* ``o mod s`` fixes which taps, and they read a window
of inputs ``d / gcd(s, d)`` apart (adjacent when dilation divides stride). So the
forward is ``s^D`` small dense convolutions, one per phase (the sub-pixel idea), computed
as a gather, race-free: each output is written once. Inside the call:

1. ``x`` is transposed to grouped channels-last ``(g, N, D, H, W, Cin_g)``, so a window
   of adjacent input pixels is one contiguous run of channels;
2. the weight is packed per phase: ``(g, phase, Cout_g, taps…, Cin_g)`` in gather order;
3. every output is a sum of dot products of input windows with packed weight rows,
   computed 4 batch entries × 4 output channels at a time (``_tiled_kernels.dot4x4``:
   8 loads per 16 FMAs, vectorised over the channel run), written straight into NC(D)HW.

Backward. grad_weight pairs every input with every tap's output: x is laid
batch-innermost ``(Cin, D, H, W, N)`` and grad_output in one plane per (phase along D
and H, tap along W), each already shifted so that input column ``i`` meets its own
column (``_layout_kernels.to_tap_planes``); a tap's sum over (batch × rows × columns) is
then one contiguous dot product with no padding in it, computed in 4×4 blocks (4 input
channels × 4 output channels, or × 4 taps along W when the output channels are few).
grad_input is the forward's gather with the roles swapped (grad_output pixels
``o = i·s − p + k·d`` feed input ``i``: one phase, taps ``d`` apart), except when the
output channels are so few that its dot products would be short (``SHORT_DOT``): then it
runs on a padded column grid, vectorised over space and batch, each tap adding a shifted
run of grad_output to a run of grad_input.
grad_bias is a channel sum in float64.

Few output channels (fewer than 4 per group, s dividing k: the DCGAN image layer) would
leave the forward's 4×4 blocks partly empty; the phases are then stacked as channels
instead (``_fused_forward``: ``numba/subpixel-fused``'s forward, one stride-1 gather with
``s^D·Cout/g`` channels and a pixel shuffle), which fills them at no extra products.

A one-pixel input (a latent vector's projection: padding 0, output = kernel) needs no
phases and no layout: forward and grad_weight are then GEMMs of the NC(D)HW arrays as
they are (``_axpy_kernels.dense_rows``).

Scratch buffers (the re-laid copies) are allocated in preparation and reused; the layout
changes themselves are part of every timed call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._common import Call, NumbaStrategy, bias_or_zeros, flat
from ._fused_forward import fused_forward, fused_forward_bytes, phases_as_channels
from ._geometry import (
    GATHER_SKEW,
    Dims,
    Geometry,
    forward_axis,
    grad_input_axis,
    pack_offsets,
    phase_axis,
    skewed,
    source_stride,
)

SHORT_DOT = 64
"""A gather whose dot products are shorter than this (source channels × taps along W)
spends most of its time finishing SIMD reductions (the DCGAN image layer's grad_input:
3 channels × 4 taps); grad_input then vectorises over space instead
(``_axpy_kernels.grad_input_axpy``)."""


GATHER_ITEMS = 64
"""Parallel iterations a gather aims for: rows are split into column blocks only when
there are fewer rows than this (1-D problems, tiny batches)."""


def _dims(values: list[int]) -> tuple[int, int, int]:
    return (values[0], values[1], values[2])


def columns(rows: int, width: int) -> int:
    """Columns per parallel iteration of a gather over ``rows`` rows of ``width`` columns."""
    blocks = min(-(-GATHER_ITEMS // rows), -(-width // 32))  # but keep 32 columns at least
    return -(-width // max(1, blocks))


def _most_taps(I: int, O: int, K: int, s: int, p: int, d: int) -> int:
    """The most kernel taps any forward phase of one dimension has (``forward_axis``'s J),
    without building its per-output table."""
    counts = [sum(1 for k in range(K) if (r + p - k * d) % s == 0) for r in range(s)]
    return max(1, *counts)


class Tiled(NumbaStrategy):
    algorithm = "tiled"
    description = (
        "phase-decomposed gather on channels-last tiles (sub-pixel), 4x4 register-blocked "
        "SIMD dot products; grad_weight on batch-innermost per-tap planes"
    )

    def warmup_problems(self, dtype: str) -> list[Problem]:
        """The base's tiny problem takes the small-channel grad_input; add one whose
        grad_input gathers (one pixel: it also takes the dense forward and grad_weight)."""
        channels = max(1, SHORT_DOT)  # dot length = channels × 1 tap
        wide = Problem.create(
            batch=1, in_channels=1, out_channels=channels, input=1, kernel=1, dtype=dtype
        )
        return [*super().warmup_problems(dtype), wide]

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The scratch buffers preparation allocates (the re-laid copies) and the results.

        Forward: channels-last x, the weight packed per phase (``s^D`` phases of the most
        taps any phase has), y. Backward: the per-tap planes (:func:`tap_planes_scratch`),
        grad_input's own (itself batch-innermost, or channels-last grad_output and a packed
        weight), and the gradients.
        """
        geo = Geometry.of(problem)
        x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
        cin, cout = problem.in_channels, problem.out_channels
        if pass_ == "forward" and phases_as_channels(problem) and not one_pixel(geo):
            return fused_forward_bytes(problem)
        if pass_ == "forward":
            taps = math.prod(_most_taps(*axis) for axis in geo.axes())
            row = taps * geo.cin_g + GATHER_SKEW
            packed = geo.groups * math.prod(geo.stride) * geo.cout_g * row
            tables = 4 * 8 * sum(geo.output)  # int64 (phase, first, last, source) per output
            xs = x + geo.groups * geo.batch * GATHER_SKEW
            return (xs + packed + math.prod(problem.y_shape) + cout) * problem.itemsize + tables
        dot_length = geo.cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1)
        # grad_input batch-innermost, or channels-last grad_output, a packed weight, no bias
        skews = (geo.groups * geo.batch + cin) * GATHER_SKEW
        own = x if dot_length < SHORT_DOT else math.prod(problem.y_shape) + w + cin + skews
        planes = 0 if one_pixel(geo) else tap_planes_scratch(geo)
        results = x + w + (cout if problem.bias else 0)
        return (planes + own + results) * problem.itemsize

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        if one_pixel(geo):
            return _dense_forward(problem, geo, x, weight, bias)
        if phases_as_channels(problem):
            return fused_forward(problem, x, weight, bias, columns)
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
        axes = [forward_axis(*a) for a in geo.axes()]
        P = _dims([a.phases for a in axes])
        J = _dims([a.taps for a in axes])
        E = _dims([a.step for a in axes])
        tab_d, tab_h, tab_w = (np.ascontiguousarray(a.table) for a in axes)
        dest, row, full = skewed(pack_offsets(axes, cout_g, cin_g), cout_g)
        xf, wf = flat(x, dtype), flat(weight, dtype)
        bf = bias_or_zeros(bias, problem.out_channels, dtype)
        pixels = math.prod(geo.input)
        sn = source_stride(pixels, cin_g)
        xs = np.empty(G * N * sn, dtype=dtype)
        wp = np.empty(G * math.prod(P) * cout_g * row, dtype=dtype)
        size, shape = math.prod(problem.y_shape), problem.y_shape
        cols = columns(G * -(-N // 4) * geo.output[0] * geo.output[1], geo.output[2])

        def call() -> Array:
            lay.to_channels_last(xf, xs, N, G, cin_g, pixels, sn)
            lay.pack_weights(wf, wp, G, cin_g, cout_g, dest, row, full, True)
            y = np.empty(size, dtype=dtype)
            kern.gather(
                xs, wp, bf, y, N, G, cin_g, cout_g, geo.input, geo.output, P, J, E,
                tab_d, tab_h, tab_w, cols, (sn, row),
            )  # fmt: skip
            return y.reshape(shape)

        return call

    def backward_call(self, problem: Problem, grad_output: Array, x: Array, weight: Array) -> Call:
        from . import _axpy_kernels as axpy
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
        cin, cout = problem.in_channels, problem.out_channels
        gyf, xf, wf = flat(grad_output, dtype), flat(x, dtype), flat(weight, dtype)
        out_pixels = math.prod(geo.output)
        dense = one_pixel(geo)
        planes = None if dense else TapPlanes(geo, dtype)

        # grad_input: a gather from channels-last grad_output (one phase, taps d apart),
        # unless its dot products would be short; then SIMD over space on the tap planes.
        dot_length = cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1)
        if planes is not None and dot_length < SHORT_DOT:
            grad_input = planes.grad_input

        else:
            gi_axes = [grad_input_axis(*a) for a in geo.axes()]
            gi_d, gi_h, gi_w = (np.ascontiguousarray(a.table) for a in gi_axes)
            gi_dest, gi_row, _ = skewed(pack_offsets(gi_axes, cin_g, cout_g), cin_g)
            sn = source_stride(out_pixels, cout_g)
            gys = np.empty(G * N * sn, dtype=dtype)
            wpi = np.empty(G * cin_g * gi_row, dtype=dtype)
            no_bias = np.zeros(cin, dtype=dtype)
            cols = columns(G * -(-N // 4) * geo.input[0] * geo.input[1], geo.input[2])

            def grad_input(wf: Array) -> Array:
                lay.to_channels_last(gyf, gys, N, G, cout_g, out_pixels, sn)
                lay.pack_weights(wf, wpi, G, cin_g, cout_g, gi_dest, gi_row, True, False)
                gx = np.empty(xf.size, dtype=dtype)
                kern.gather(
                    gys, wpi, no_bias, gx, N, G, cout_g, cin_g, geo.output, geo.input,
                    (1, 1, 1), geo.kernel, geo.dilation, gi_d, gi_h, gi_w, cols, (sn, gi_row),
                )  # fmt: skip
                return gx

        weight_grad = _dense_weight_grad(geo, dtype) if dense else None

        def call() -> tuple[Array, Array, Array | None]:
            gw = np.empty(wf.size, dtype=dtype)
            if planes is not None:
                planes.fill(xf, gyf)
                planes.grad_weight(gw)
            elif weight_grad is not None:
                weight_grad(xf, gyf, gw)
            gx = grad_input(wf)
            gb = None
            if problem.bias:
                gb = np.empty(cout, dtype=dtype)
                axpy.channel_sums(gyf, gb, N, cout, out_pixels)
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call


SKEW = 16
"""Elements added to the stride between grad_weight's channels and tap planes: their
rows are otherwise a power of two apart in most layers, and the 8 rows a 4×4 block
streams would then share one set of L1 (and L2) cache lines."""


def one_pixel(geo: Geometry) -> bool:
    """Whether the input is one pixel whose taps are the output itself (a latent vector's
    projection: padding 0, output = kernel): then forward and grad_weight are GEMMs of the
    NC(D)HW arrays as they are (``_axpy_kernels.dense_rows``)."""
    return all(
        i == 1 and p == 0 and o == k and (d == 1 or k == 1) for i, o, k, _, p, d in geo.axes()
    )


def _dense_forward(
    problem: Problem, geo: Geometry, x: Array, weight: Array, bias: Array | None
) -> Call:
    """A one-pixel input's forward: ``y[n] = x[n] · w`` per group, straight from NC(D)HW."""
    from . import _axpy_kernels as axpy

    dtype = np.dtype(problem.dtype)
    xf, wf = flat(x, dtype), flat(weight, dtype)
    bf = bias_or_zeros(bias, problem.out_channels, dtype)
    G, cin_g, taps = geo.groups, geo.cin_g, math.prod(geo.kernel)
    J = geo.cout_g * taps  # one group's outputs of one batch entry
    strides = ((cin_g, G * cin_g, 1), (cin_g * J, J, 0), (J, G * J, 0))

    def call() -> Array:
        y = np.empty(geo.batch * G * J, dtype=dtype)
        axpy.dense_rows(xf, wf, y, bf, G, geo.batch, cin_g, J, taps, *strides)
        return y.reshape(problem.y_shape)

    return call


def _dense_weight_grad(
    geo: Geometry, dtype: np.dtype[np.generic]
) -> Callable[[Array, Array, Array], None]:
    """A one-pixel input's grad_weight: ``gw[ci] = Σ_n x[n, ci] · grad_output[n]`` per
    group, as a step like :func:`grad_weight_step`'s, with no scratch."""
    from . import _axpy_kernels as axpy

    G, cin_g, taps = geo.groups, geo.cin_g, math.prod(geo.kernel)
    J = geo.cout_g * taps
    zeros = np.zeros(G * geo.cout_g, dtype=dtype)
    strides = ((cin_g, 1, G * cin_g), (J, G * J, 0), (cin_g * J, J, 0))

    def step(xf: Array, gyf: Array, gw: Array) -> None:
        axpy.dense_rows(xf, gyf, gw, zeros, G, cin_g, geo.batch, J, taps, *strides)

    return step


def _tap_layout(geo: Geometry) -> tuple[int, int, int]:
    """``(x channel stride, tap plane stride, tap-plane elements)``."""
    rows = [phase_axis(*a).rows for a in geo.axes()]
    planes = geo.stride[0] * geo.stride[1] * geo.kernel[2]
    sx = math.prod(geo.input) * geo.batch + SKEW
    sp = rows[0] * rows[1] * geo.input[2] * geo.batch + SKEW
    return sx, sp, geo.groups * geo.cout_g * planes * sp


def tap_planes_scratch(geo: Geometry) -> int:
    """Elements of :class:`TapPlanes`' scratch: x batch-innermost, grad_output in per-tap
    planes."""
    sx, _, gq = _tap_layout(geo)
    return geo.groups * geo.cin_g * sx + gq


class TapPlanes:
    """x batch-innermost and grad_output in per-tap planes (``to_tap_planes``), and the two
    backward steps that read them: grad_weight (``_tiled_kernels.grad_weight``) and the
    small-channel grad_input (``_axpy_kernels.grad_input_axpy``). Scratch is allocated
    here, once; :meth:`fill` lays out both operands inside the timed call."""

    def __init__(self, geo: Geometry, dtype: np.dtype[np.generic]) -> None:
        axes = [phase_axis(*a) for a in geo.axes()]
        self.geo, self.dtype = geo, dtype
        self.tables = [np.ascontiguousarray(a.table) for a in axes]
        self.Q = _dims([a.rows for a in axes])
        self.sx, self.sp, size = _tap_layout(geo)
        self.xb = np.zeros(geo.groups * geo.cin_g * self.sx, dtype=dtype)
        self.gq = np.zeros(size, dtype=dtype)
        # 4 taps along W per block when that leaves fewer blocks partly empty than 4 channels
        kw, cout_g = geo.kernel[2], geo.cout_g
        self.tap_block = -(-kw // 4) * 4 * cout_g < -(-cout_g // 4) * 4 * kw
        self.gxb: Array | None = None

    def _shape(self) -> tuple[int, int, int, int, Dims, Dims, Dims, Dims, bool]:
        geo = self.geo
        return (geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input, geo.kernel,
                geo.stride, self.Q, self.tap_block)  # fmt: skip

    def fill(self, xf: Array, gyf: Array) -> None:
        from . import _layout_kernels as lay

        geo = self.geo
        cin, cout, iw = geo.groups * geo.cin_g, geo.groups * geo.cout_g, geo.input[2]
        lay.to_batch_inner(xf, self.xb, geo.batch, cin, geo.input, self.sx)
        lay.to_tap_planes(
            gyf, self.gq, geo.batch, cout, geo.output, geo.stride, self.Q, iw, self.sp,
            self.tables[2],
        )  # fmt: skip

    def grad_weight(self, gw: Array) -> None:
        from . import _tiled_kernels as kern

        kern.grad_weight(self.xb, self.gq, gw, *self._shape(), (self.sx, self.sp), *self.tables)

    def grad_input(self, wf: Array) -> Array:
        from . import _axpy_kernels as axpy
        from . import _layout_kernels as lay

        geo = self.geo
        cin = geo.groups * geo.cin_g
        if self.gxb is None:
            self.gxb = np.empty(cin * math.prod(geo.input) * geo.batch, dtype=self.dtype)
        axpy.grad_input_axpy(self.gq, wf, self.gxb, *self._shape(), self.sp, *self.tables)
        gx = np.empty(cin * math.prod(geo.input) * geo.batch, dtype=self.dtype)
        lay.from_batch_inner(self.gxb, gx, geo.batch, cin, geo.input)
        return gx
