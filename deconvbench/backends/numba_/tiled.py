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

Backward. grad_weight pairs every input with every tap's output: grad_output is split by
phase and both operands are laid batch-innermost on a common padded column grid, which
makes each tap's sum over (batch × rows × columns) one contiguous dot product, again in
4×4 blocks (4 input × 4 output channels). grad_input is the forward's gather with the
roles swapped (grad_output pixels ``o = i·s − p + k·d`` feed input ``i``: one phase,
taps ``d`` apart), except when the output channels are so few that its dot products
would be short (``SHORT_DOT``): then it runs on grad_weight's grid, vectorised over
space and batch, each tap adding a shifted run of grad_output to a run of grad_input.
grad_bias is a channel sum in float64.

Scratch buffers (the re-laid copies) are allocated in preparation and reused; the layout
changes themselves are part of every timed call.
"""

from __future__ import annotations

import math

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._common import Call, NumbaStrategy, bias_or_zeros, flat
from ._geometry import (
    Geometry,
    forward_axis,
    grad_input_axis,
    grid_axis,
    pack_offsets,
    phase_axis,
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


def _columns(rows: int, width: int) -> int:
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
        "SIMD dot products; grad_weight on a padded batch-innermost grid"
    )

    def warmup_problems(self, dtype: str) -> list[Problem]:
        """The base's tiny problem takes the small-channel grad_input; add one that gathers."""
        channels = max(1, SHORT_DOT)  # dot length = channels × 1 tap
        wide = Problem.create(
            batch=1, in_channels=1, out_channels=channels, input=1, kernel=1, dtype=dtype
        )
        return [*super().warmup_problems(dtype), wide]

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The scratch buffers preparation allocates (the re-laid copies) and the results.

        Forward: channels-last x, the weight packed per phase (``s^D`` phases of the most
        taps any phase has), y. Backward: x and the phase-split grad_output on the padded
        batch-innermost grid, grad_input's own scratch (a grid-sized one, or channels-last
        grad_output and a packed weight), and the gradients.
        """
        geo = Geometry.of(problem)
        x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
        cin, cout, n = problem.in_channels, problem.out_channels, problem.batch
        if pass_ == "forward":
            taps = math.prod(_most_taps(*axis) for axis in geo.axes())
            packed = geo.groups * math.prod(geo.stride) * geo.cout_g * taps * geo.cin_g
            tables = 4 * 8 * sum(geo.output)  # int64 (phase, first, last, source) per output
            return (x + packed + math.prod(problem.y_shape) + cout) * problem.itemsize + tables
        ph_axes = [phase_axis(*a) for a in geo.axes()]
        _, width = grid_axis(ph_axes[2], geo.input[2])
        rows = [a.rows for a in ph_axes]
        xb = cin * geo.input[0] * geo.input[1] * width * n
        gp = cout * math.prod(geo.stride) * rows[0] * rows[1] * width * n
        dot_length = geo.cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1)
        own = xb if dot_length < SHORT_DOT else math.prod(problem.y_shape) + w + cin
        results = x + w + (cout if problem.bias else 0)
        return (xb + gp + own + results) * problem.itemsize

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
        axes = [forward_axis(*a) for a in geo.axes()]
        P = _dims([a.phases for a in axes])
        J = _dims([a.taps for a in axes])
        E = _dims([a.step for a in axes])
        tab_d, tab_h, tab_w = (np.ascontiguousarray(a.table) for a in axes)
        dest, row, full = pack_offsets(axes, cout_g, cin_g)
        xf, wf = flat(x, dtype), flat(weight, dtype)
        bf = bias_or_zeros(bias, problem.out_channels, dtype)
        pixels = math.prod(geo.input)
        xs = np.empty(xf.size, dtype=dtype)
        wp = np.empty(G * math.prod(P) * cout_g * math.prod(J) * cin_g, dtype=dtype)
        size, shape = math.prod(problem.y_shape), problem.y_shape
        cols = _columns(G * -(-N // 4) * geo.output[0] * geo.output[1], geo.output[2])

        def call() -> Array:
            lay.to_channels_last(xf, xs, N, G, cin_g, pixels)
            lay.pack_weights(wf, wp, G, cin_g, cout_g, dest, row, full, True)
            y = np.empty(size, dtype=dtype)
            kern.gather(
                xs, wp, bf, y, N, G, cin_g, cout_g, geo.input, geo.output, P, J, E,
                tab_d, tab_h, tab_w, cols,
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

        # Both operands of grad_weight batch-innermost on the common column grid.
        ph_axes = [phase_axis(*a) for a in geo.axes()]
        ph_tables = [np.ascontiguousarray(a.table) for a in ph_axes]
        offset, width = grid_axis(ph_axes[2], geo.input[2])
        Q = _dims([a.rows for a in ph_axes])
        grid = (N, G, cin_g, cout_g, geo.input, geo.kernel, geo.stride, Q, width, offset)
        xb = np.empty(cin * geo.input[0] * geo.input[1] * width * N, dtype=dtype)
        gp = np.empty(cout * math.prod(geo.stride) * Q[0] * Q[1] * width * N, dtype=dtype)

        # grad_input: a gather from channels-last grad_output (one phase, taps d apart),
        # unless its dot products would be short; then SIMD over space on the grid.
        dot_length = cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1)
        if dot_length < SHORT_DOT:
            gxb = np.empty_like(xb)

            def grad_input() -> Array:
                gx = np.empty(xf.size, dtype=dtype)
                axpy.grad_input_axpy(gp, wf, gxb, *grid, *ph_tables)
                lay.from_batch_inner(gxb, gx, N, cin, geo.input, width, offset)
                return gx

        else:
            gi_axes = [grad_input_axis(*a) for a in geo.axes()]
            gi_d, gi_h, gi_w = (np.ascontiguousarray(a.table) for a in gi_axes)
            gi_dest, gi_row, _ = pack_offsets(gi_axes, cin_g, cout_g)
            gys = np.empty(gyf.size, dtype=dtype)
            wpi = np.empty(wf.size, dtype=dtype)
            no_bias = np.zeros(cin, dtype=dtype)
            cols = _columns(G * -(-N // 4) * geo.input[0] * geo.input[1], geo.input[2])

            def grad_input() -> Array:
                lay.to_channels_last(gyf, gys, N, G, cout_g, out_pixels)
                lay.pack_weights(wf, wpi, G, cin_g, cout_g, gi_dest, gi_row, True, False)
                gx = np.empty(xf.size, dtype=dtype)
                kern.gather(
                    gys, wpi, no_bias, gx, N, G, cout_g, cin_g, geo.output, geo.input,
                    (1, 1, 1), geo.kernel, geo.dilation, gi_d, gi_h, gi_w, cols,
                )  # fmt: skip
                return gx

        def call() -> tuple[Array, Array, Array | None]:
            lay.to_phases(gyf, gp, N, cout, geo.output, geo.stride, Q, width, offset)
            gx = grad_input()
            lay.to_batch_inner(xf, xb, N, cin, geo.input, width, offset)
            gw = np.empty(wf.size, dtype=dtype)
            kern.grad_weight(xb, gp, gw, *grid, *ph_tables)
            gb = None
            if problem.bias:
                gb = np.empty(cout, dtype=dtype)
                axpy.channel_sums(gyf, gb, N, cout, out_pixels)
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call
