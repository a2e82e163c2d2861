"""The fused (ESPCN) forward: one stride-1 gather with ``P·Cout/g`` channels, then a pixel
shuffle. ``numba/subpixel-fused`` always runs it; ``numba/tiled`` runs it when the output
channels are few (:func:`phases_as_channels`).

The gather is ``numba/tiled``'s (``_tiled_kernels.gather``: channels-last input, packed
weights, 4×4 register-blocked dot products) on the fused problem
(``_fused_geometry.fused_geometry``), the weight packed straight from the real weight
with the zero slots zeroed, the bias repeated per phase; ``_fused_kernels.pixel_shuffle``
then writes phase ``rho``'s channels to the outputs ``m·s + rho − p``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...problem import Problem
from ..numpy_._fused import wasted_fraction
from ..strategy import Array
from ._common import Call, flat
from ._forward_tiles import ForwardTiles, forward_tiles_bytes, output_lanes
from ._fused_geometry import FusedGeometry, forward_pack, fused_geometry, gather_tables
from ._geometry import GATHER_SKEW, Geometry, skewed, source_stride

Columns = Callable[[int, int], int]
"""``numba/tiled``'s ``columns(rows, width)``: the columns one parallel iteration owns."""

TilesFit = Callable[[Geometry, int], bool]
"""``numba/tiled``'s ``forward_on_tiles(geo, itemsize)``."""


def phases_as_channels(problem: Problem) -> bool:
    """Whether the fused form fills the gather's 4×4 blocks better than the per-phase one
    at no cost: fewer than 4 output channels per group (a per-phase block is then partly
    empty, and runs the narrow edge kernels), several phases to stack as channels, and no
    padding zeros in the fused kernel (s divides k)."""
    cout_g = problem.out_channels // problem.groups
    return cout_g < 4 and math.prod(problem.stride) > 1 and wasted_fraction(problem) == 0


def fused_forward_bytes(problem: Problem) -> int:
    """Scratch and result of :func:`fused_forward`: channels-last x and the packed fused
    weight (skewed for the gather, bordered and padded for the tiles: the larger of the
    two), the fused result ``z``, y and the repeated bias."""
    geo = fused_geometry(problem).geo
    x = math.prod(problem.x_shape) + geo.groups * geo.batch * GATHER_SKEW
    fused_w = geo.groups * geo.cout_g * (geo.cin_g * math.prod(geo.kernel) + GATHER_SKEW)
    z = geo.batch * geo.groups * geo.cout_g * math.prod(geo.output)
    y = math.prod(problem.y_shape)
    gather = (x + fused_w) * problem.itemsize
    tiles = forward_tiles_bytes(geo, problem.itemsize)
    return max(gather, tiles) + (z + y + geo.groups * geo.cout_g) * problem.itemsize


def three_out(problem: Problem) -> tuple[int, int, int]:
    """The output's spatial shape as 3 dimensions (leading ones)."""
    out = (1,) * (3 - problem.ndim) + tuple(problem.output)
    return (out[0], out[1], out[2])


def fused_forward(
    problem: Problem,
    x: Array,
    weight: Array,
    bias: Array | None,
    columns: Columns,
    on_tiles: TilesFit,
) -> Call:
    """The forward call in the fused form; scratch is allocated here, once. The fused
    correlation runs on ``numba/tiled``'s GEMM tiles where ``on_tiles`` says they fit the
    fused problem (its ``forward_on_tiles``), else on its gather."""
    from . import _fused_kernels as fk
    from . import _layout_kernels as lay
    from . import _tiled_kernels as kern

    fg = fused_geometry(problem)
    geo = fg.geo
    dtype = np.dtype(problem.dtype)
    N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, fg.cout_g
    xf, wf = flat(x, dtype), flat(weight, dtype)
    bias_g = None if bias is None else flat(bias, dtype).reshape(G, 1, cout_g)
    fused_bias = np.zeros((G, fg.phases, cout_g), dtype=dtype)
    size, shape = math.prod(problem.y_shape), problem.y_shape
    out3 = three_out(problem)

    def shuffle(z: Array) -> Array:
        y = np.empty(size, dtype=dtype)
        fk.pixel_shuffle(z, y, N, G, cout_g, geo.output, fg.stride, out3, fg.crop, True)
        return y.reshape(shape)

    if on_tiles(geo, problem.itemsize):
        tiles = _fused_tiles(fg, dtype)

        def tiled_call() -> Array:
            if bias_g is not None:
                fused_bias[...] = bias_g  # the bias of every phase's channels
            return shuffle(tiles(xf, wf, fused_bias.reshape(-1)))

        return tiled_call

    dest, row, full = skewed(forward_pack(fg), cout_g)  # each phase: cout_g targets
    tab_d, tab_h, tab_w = gather_tables(fg)
    J = (geo.kernel[0], geo.kernel[1], geo.kernel[2])  # one phase: every slot
    sn = source_stride(math.prod(geo.input), cin_g)
    xs = np.empty(G * N * sn, dtype=dtype)
    wp = np.empty(G * geo.cout_g * row, dtype=dtype)
    z = np.empty(N * G * geo.cout_g * math.prod(geo.output), dtype=dtype)
    cols = columns(G * -(-N // 4) * geo.output[0] * geo.output[1], geo.output[2])

    def call() -> Array:
        lay.to_channels_last(xf, xs, N, G, cin_g, math.prod(geo.input), sn)
        lay.pack_weights(wf, wp, G, cin_g, cout_g, dest, row, full, True)
        if bias_g is not None:
            fused_bias[...] = bias_g  # the bias of every phase's channels
        kern.gather(
            xs, wp, fused_bias.reshape(-1), z, N, G, cin_g, geo.cout_g, geo.input,
            geo.output, (1, 1, 1), J, geo.dilation, tab_d, tab_h, tab_w, cols, (sn, row),
        )  # fmt: skip
        return shuffle(z)

    return call


def _fused_tiles(fg: FusedGeometry, dtype: np.dtype[np.generic]) -> ForwardTiles:
    """The fused correlation on GEMM tiles: a real tap goes to the slot of its fused tap
    (``forward_pack``'s gather slot, the tiles' order too) and to its phase's lanes."""
    dest, row, _ = forward_pack(fg)
    _, cop = output_lanes(fg.geo, dtype.itemsize)
    phase_block = np.uint64(fg.cout_g * row)  # forward_pack's rows of one phase
    rho, rest = np.divmod(dest, phase_block)
    slot = rest // np.uint64(fg.geo.cin_g)  # rest is the gather slot's first channel
    tiles_dest = slot.astype(np.int64) * fg.geo.cin_g * cop + rho.astype(np.int64) * fg.cout_g
    return ForwardTiles(fg.geo, dtype, w_cout_g=fg.cout_g, dest=tiles_dest)
