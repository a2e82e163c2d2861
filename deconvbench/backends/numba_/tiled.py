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

Where the output channels and a phase's outputs along W fill them, the phases run on GEMM
tiles instead (``_forward_tiles``, see the backward below): rows are outputs of one phase
along W, broadcast from ``x`` laid channels-last inside a zero border; lanes are output
channels of the weight packed per phase; each phase reduces over its own taps only.

Backward. Both gradients are GEMMs in disguise, and where the channels fill its lanes
each runs on an outer-product GEMM tile (``_gemm_kernels.tile``, written in LLVM IR):
6 or 4 broadcast rows × 64 float32 lanes of accumulators held in AVX-512 registers, so
no sum is ever reduced across lanes (the dot-product form's cost at short reductions);
channel counts that fill 32 lanes better than 64 (32, 96) take narrow tiles of 8 or 6
rows × 32 lanes (``_grad_operands.lane_vectors``).
grad_output is first laid channels-last (``_grad_operands.ChannelsLastGrad``), inside a
zero border when a consumer reads taps that miss the output. :class:`BackwardPaths`
picks, per gradient, the form the shape suits (thresholds ``TILE_FILL``,
``COLUMNS_FILL``, ``INPUT_TILE_FILL``, ``TILE_PANEL_BYTES``, ``SHORT_DOT``):

- grad_weight: *tiles* (rows: input channels broadcast from ``x`` as it is; lanes:
  output channels of one tap) when output channels fill the lanes; *columns* when they
  are few but (tap, channel) pairs fill them (im2col rows, per-entry partial sums added
  in a fixed order); else 4×4 dot products over per-tap planes (``_tap_planes``: x
  batch-innermost, grad_output in one shifted plane per tap along W); a one-pixel input
  takes a plain GEMM (below).
- grad_input: *tiles* (rows: 4 or 6 inputs along W broadcast from the bordered
  grad_output; lanes: input channels of the weight packed channels-innermost) when input
  channels and inputs along W fill them and a tile's weights fit in L2; else the
  forward's gather with the roles swapped (grad_output pixels ``o = i·s − p + k·d`` feed
  input ``i``: one phase, taps ``d`` apart); and when output channels are so few that
  the gather's dot products would be short, SIMD over space on the tap planes.

grad_bias is a channel sum in float64.

Few output channels (fewer than 4 per group, s dividing k: the DCGAN image layer) would
leave the forward's 4×4 blocks partly empty; the phases are then stacked as channels
instead (``_fused_forward``: ``numba/subpixel-fused``'s forward, one stride-1 gather with
``s^D·Cout/g`` channels and a pixel shuffle), which fills them at no extra products.

A one-pixel input (a latent vector's projection: padding 0, output = kernel) needs no
phases: forward and gradients are then plain GEMMs (``_one_pixel``), the forward and
grad_weight of the NC(D)HW arrays as they are.

Scratch buffers (the re-laid copies) are allocated in preparation and reused; the layout
changes themselves are part of every timed call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...problem import Pass, Problem
from ..strategy import Array
from ._common import Call, NumbaStrategy, bias_or_zeros, flat
from ._forward_tiles import forward_tiles_bytes, forward_tiles_call, forward_tiles_fit
from ._fused_forward import fused_forward, fused_forward_bytes, phases_as_channels
from ._geometry import (
    GATHER_SKEW,
    TILE_ROWS,
    Geometry,
    forward_axis,
    pack_offsets,
    skewed,
    source_stride,
)
from ._grad_operands import (
    ChannelsLastGrad,
    ColumnsGrad,
    TileGradInput,
    channels_last_bytes,
    columns_bytes,
    lane_vectors,
    tile_grad_input_bytes,
    tile_rows,
    tile_width,
)
from ._one_pixel import (
    dense_forward,
    dense_input_bytes,
    dense_input_grad,
    dense_weight_grad,
    one_pixel,
)
from ._tap_planes import TapPlanes, tap_planes_scratch

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
        "phase-decomposed (sub-pixel) outer-product GEMM tiles in registers where channels "
        "fill them, else gathers of 4x4 register-blocked SIMD dot products"
    )

    def warmup_problems(self, dtype: str) -> list[Problem]:
        """The base's tiny problem takes the small-channel grad_input; add one whose
        grad_input gathers, two with one input pixel (the dense forward; the dense
        gradients, grad_weight on tiles and by rows), one whose gradients both run on
        GEMM tiles (channels and inputs along W fill them: ``TILE_FILL``,
        ``INPUT_TILE_FILL``) and one whose grad_weight runs on columns (3 output channels
        × 16 taps: ``COLUMNS_FILL``)."""
        channels = max(1, SHORT_DOT)  # dot length = channels × 1 tap
        full = tile_width(4)  # fills a tile row in float32 and two in float64
        return [
            *super().warmup_problems(dtype),
            Problem.create(
                batch=1, in_channels=1, out_channels=channels, input=2, kernel=1, dtype=dtype
            ),
            *(
                Problem.create(
                    batch=1, in_channels=1, out_channels=cout, input=1, kernel=1, dtype=dtype
                )
                for cout in (full, 3)  # grad_output rows of whole tile rows, and not
            ),
            Problem.create(
                batch=1, in_channels=full, out_channels=full, input=TILE_ROWS, kernel=1, dtype=dtype
            ),
            Problem.create(
                batch=1,
                in_channels=1,
                out_channels=3,
                input=(2, 2),
                kernel=4,
                stride=2,
                dtype=dtype,
            ),
        ]

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The scratch buffers preparation allocates (the re-laid copies) and the results.

        Forward: channels-last x, the weight packed per phase (``s^D`` phases of the most
        taps any phase has), y. Backward: the layouts its paths read (:class:`BackwardPaths`:
        channels-last or padded grad_output with a packed weight, per-tap planes) and the
        gradients.
        """
        geo = Geometry.of(problem)
        x, w = math.prod(problem.x_shape), math.prod(problem.weight_shape)
        cout = problem.out_channels
        if pass_ == "forward" and phases_as_channels(problem) and not one_pixel(geo):
            return fused_forward_bytes(problem)
        if pass_ == "forward" and not one_pixel(geo) and forward_on_tiles(geo, problem.itemsize):
            y = math.prod(problem.y_shape) + cout
            return forward_tiles_bytes(geo, problem.itemsize) + y * problem.itemsize
        if pass_ == "forward":
            taps = math.prod(_most_taps(*axis) for axis in geo.axes())
            row = taps * geo.cin_g + GATHER_SKEW
            packed = geo.groups * math.prod(geo.stride) * geo.cout_g * row
            tables = 4 * 8 * sum(geo.output)  # int64 (phase, first, last, source) per output
            xs = x + geo.groups * geo.batch * GATHER_SKEW
            return (xs + packed + math.prod(problem.y_shape) + cout) * problem.itemsize + tables
        results = x + w + (cout if problem.bias else 0)
        return backward_scratch(geo, problem.itemsize) + results * problem.itemsize

    def forward_call(self, problem: Problem, x: Array, weight: Array, bias: Array | None) -> Call:
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        if one_pixel(geo):
            return dense_forward(problem, geo, x, weight, bias)
        if phases_as_channels(problem):
            return fused_forward(problem, x, weight, bias, columns, forward_on_tiles)
        if forward_on_tiles(geo, problem.itemsize):
            return forward_tiles_call(problem, geo, x, weight, bias)
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

        geo = Geometry.of(problem)
        dtype = np.dtype(problem.dtype)
        gyf, xf, wf = flat(grad_output, dtype), flat(x, dtype), flat(weight, dtype)
        gradients = backward_step(geo, dtype)

        def call() -> tuple[Array, Array, Array | None]:
            gx, gw = gradients(gyf, xf, wf)
            gb = None
            if problem.bias:
                gb = np.empty(problem.out_channels, dtype=dtype)
                axpy.channel_sums(gyf, gb, geo.batch, problem.out_channels, math.prod(geo.output))
            return gx.reshape(problem.x_shape), gw.reshape(problem.weight_shape), gb

        return call


BackwardStep = Callable[[Array, Array, Array], tuple[Array, Array]]
"""``(grad_output, x, weight) → (grad_input, grad_weight)``, all flat."""


def backward_step(geo: Geometry, dtype: np.dtype[np.generic]) -> BackwardStep:
    """grad_input and grad_weight of a problem seen as ``geo``, on the paths
    :func:`backward_paths` picks; scratch is allocated here, once. (``numba/subpixel-fused``
    runs it on its fused problem.)"""
    paths = backward_paths(geo, dtype.itemsize)
    cols = columns(geo.groups * -(-geo.batch // 4) * geo.input[0] * geo.input[1], geo.input[2])
    last = ChannelsLastGrad(geo, dtype, cols, paths.padded) if paths.channels_last else None
    columns_grad = ColumnsGrad(last) if last and paths.grad_weight == "columns" else None
    tiles = TileGradInput(last) if last and paths.grad_input == "tiles" else None
    planes = TapPlanes(geo, dtype) if paths.planes else None
    dense_grad = dense_weight_grad(geo, dtype) if paths.grad_weight == "dense" else None
    dense_input = dense_input_grad(geo, dtype) if paths.grad_input == "dense" else None
    weight_size = geo.groups * geo.cin_g * geo.cout_g * math.prod(geo.kernel)

    def step(gyf: Array, xf: Array, wf: Array) -> tuple[Array, Array]:
        gw = np.empty(weight_size, dtype=dtype)
        if last is not None:
            last.fill(gyf)
        if columns_grad is not None:
            columns_grad.fill()
        if planes is not None:
            planes.fill(xf, gyf)
        if dense_grad is not None:
            dense_grad(xf, gyf, gw)
        elif last is not None and paths.grad_weight == "tiles":
            last.grad_weight(xf, gw)
        elif columns_grad is not None:
            columns_grad.grad_weight(xf, gw)
        elif planes is not None:
            planes.grad_weight(gw)
        if dense_input is not None:
            gx = dense_input(gyf, wf)
        elif tiles is not None:
            gx = tiles.grad_input(wf)
        elif last is not None and paths.grad_input == "gather":
            gx = last.grad_input(wf)
        else:
            assert planes is not None  # backward_paths gives the axpy path its planes
            gx = planes.grad_input(wf)
        return gx, gw

    return step


def backward_scratch(geo: Geometry, itemsize: int) -> int:
    """Bytes of :func:`backward_step`'s scratch: the layouts its paths read
    (:class:`BackwardPaths`: channels-last or bordered grad_output with a packed weight,
    columns, per-tap planes with grad_input batch-innermost, grad_weight's tile blocks)."""
    paths = backward_paths(geo, itemsize)
    x = geo.batch * geo.groups * geo.cin_g * math.prod(geo.input)
    scratch = 0
    if paths.channels_last:
        scratch += channels_last_bytes(geo, itemsize, paths.padded)
    if paths.grad_input == "tiles":
        scratch += tile_grad_input_bytes(geo, itemsize)
    if paths.grad_input == "dense":
        scratch += dense_input_bytes(geo, itemsize)
    if paths.planes:
        scratch += (x + tap_planes_scratch(geo)) * itemsize
    if paths.grad_weight == "columns":
        scratch += columns_bytes(geo, itemsize)
    if paths.grad_weight == "tiles":
        # each tile sums every tap of its channels into a private block, one per thread
        # at most (numba runs at most one thread per core)
        block = math.prod(geo.kernel) * TILE_ROWS * tile_width(itemsize)
        scratch += block * (os.cpu_count() or 1) * itemsize
    return scratch


@dataclass(frozen=True)
class BackwardPaths:
    """How ``numba/tiled`` computes a problem's two gradients.

    grad_input: ``dense`` (a one-pixel input: a GEMM of grad_output and the weight,
    ``_one_pixel.dense_input_grad``), ``tiles`` (``_gemm_kernels.grad_input_tiles`` on
    channels-last grad_output inside a zero border), ``gather`` (the forward's gather with
    the roles swapped, on channels-last grad_output) or ``axpy`` (SIMD over space on the
    tap planes, for short dot products).
    grad_weight: ``dense`` (a one-pixel input: a GEMM of the arrays as they are),
    ``tiles`` (``_gemm_kernels.grad_weight_tiles`` on channels-last grad_output),
    ``columns`` (``_gemm_kernels.grad_weight_columns``: few output channels, on grad_output's
    columns) or ``planes`` (4×4 dot products over the tap planes).
    """

    grad_input: str
    grad_weight: str

    @property
    def channels_last(self) -> bool:
        return self.grad_input in ("tiles", "gather") or self.grad_weight in ("tiles", "columns")

    @property
    def padded(self) -> bool:
        """Whether channels-last grad_output sits in a zero border: grad_input's tiles
        and grad_weight's columns read taps that miss the output as zeros there."""
        return self.grad_input == "tiles" or self.grad_weight == "columns"

    @property
    def planes(self) -> bool:
        return self.grad_input == "axpy" or self.grad_weight == "planes"


def backward_paths(geo: Geometry, itemsize: int) -> BackwardPaths:
    """The fastest formulations this problem's shape allows (see :class:`BackwardPaths`).

    GEMM tiles need their lanes and rows mostly full: ``TILE_FILL`` of the lanes for
    output channels (grad_weight), ``INPUT_TILE_FILL`` of the lanes for input channels and
    of the rows for inputs along W (grad_input, whose rows are 4 to 8 adjacent inputs of
    one image row: ``tile_rows``); grad_input's also need their weights to fit in L2
    (``TILE_PANEL_BYTES``). A one-pixel input's gradients are plain GEMMs (``dense``)."""
    iw = geo.input[2]
    dense = one_pixel(geo)
    dot_length = geo.cout_g * (geo.kernel[2] if geo.dilation[2] == 1 else 1)
    column_row = geo.cout_g * math.prod(geo.kernel)  # every (tap, channel) of one pixel
    vectors = lane_vectors(geo.cin_g, itemsize)  # grad_input's lanes: input channels
    width = tile_width(itemsize, vectors)
    panel = math.prod(geo.kernel) * geo.cout_g * width * itemsize  # one tile's weights
    full = min(_fill(geo.cin_g, width), _fill(iw, tile_rows(iw, vectors))) >= INPUT_TILE_FILL
    if dense:
        grad_input = "dense"
    elif full and panel <= TILE_PANEL_BYTES:
        grad_input = "tiles"
    elif dot_length < SHORT_DOT:
        grad_input = "axpy"
    else:
        grad_input = "gather"
    if dense:
        grad_weight = "dense"
    elif _fill(geo.cout_g, tile_width(itemsize, lane_vectors(geo.cout_g, itemsize))) >= TILE_FILL:
        grad_weight = "tiles"
    elif grad_input != "gather" and _fill(column_row, tile_width(itemsize)) >= COLUMNS_FILL:
        grad_weight = "columns"  # read from bordered grad_output, which the gather cannot
    else:
        grad_weight = "planes"
    return BackwardPaths(grad_input, grad_weight)


TILE_PANEL_BYTES = 256 * 1024
"""The most weights one grad_input tile reads (taps × output channels × a tile row of input
channels): every tile streams them all, so they must stay in L2 (half of Zen 4's 1 MiB).
The DCGAN layer with 128 output channels (512 KiB) runs 10% slower on tiles than on the
gather, the one with 256 (1 MiB) 45% slower."""


def forward_on_tiles(geo: Geometry, itemsize: int) -> bool:
    """Whether the forward runs on GEMM tiles (``_forward_tiles``) rather than the gather:
    output channels and a phase's outputs along W fill ``FORWARD_TILE_FILL`` of them and
    a tile's weights fit in L2 (``TILE_PANEL_BYTES``).
    One-pixel inputs and phases stacked as channels are decided before this."""
    return forward_tiles_fit(geo, itemsize, FORWARD_TILE_FILL, TILE_PANEL_BYTES)


def _fill(count: int, block: int) -> float:
    """The share of whole blocks of ``block`` that ``count`` items fill."""
    return count / (-(-count // block) * block)


TILE_FILL = 0.75
"""The least share of the grad_weight tiles' lanes that output channels must fill: a tile
row is 64 float32 channels, and at 48 of them its 220 GFLOP/s (2 cores) still beats the
dot-product kernel's 130-190."""

FORWARD_TILE_FILL = 0.85
"""As ``INPUT_TILE_FILL``, for the forward's tiles (lanes: output channels; rows: outputs
of one phase along W)."""

COLUMNS_FILL = 0.75
"""The same for grad_weight on columns, whose lanes hold every (tap, output channel) pair
of a pixel: the DCGAN image layer's 16 taps × 3 channels fill 48 of 64 (and all of the
8×3 tile's 48)."""

INPUT_TILE_FILL = 0.85
"""The same for the grad_input tiles, whose rows can also be partly empty at the end of an
image row (7 inputs fill 7 of 8). On the DCGAN layers the tiles run at about 200 GFLOP/s
and the gather at 150-190, so a tile may leave a sixth of its work empty and still win."""
