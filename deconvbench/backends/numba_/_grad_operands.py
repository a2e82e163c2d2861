"""grad_output re-laid for ``numba/tiled``'s backward, with the steps that read each layout.

* :class:`ChannelsLastGrad`: grouped channels-last, the source of grad_input's gather and
  the vectors of grad_weight's GEMM tiles;
* :class:`PaddedGrad`: NC(D)HW with a zero border, the broadcast rows of grad_input's
  GEMM tiles.

(The third layout, per-tap planes, is ``_tap_planes``.) Scratch is allocated once, in
preparation; the layout changes run inside every timed call.
"""

from __future__ import annotations

import math

import numpy as np

from ..strategy import Array
from ._geometry import (
    TILE_VECTORS,
    VECTOR_BYTES,
    Dims,
    Geometry,
    grad_input_axis,
    pack_offsets,
    phase_axis,
    skewed,
    source_stride,
)

TILE_CHUNK = 65536
"""Elements of channels-last grad_output that a grad_weight tile sums over before moving
to the next tap (whole batch entries, at least one): 256 KiB in float32, so the entries
stay in L2 while every tap reads them."""


def tile_width(itemsize: int) -> int:
    """Values in one row of a GEMM tile (``NV·VL``): 64 in float32."""
    return TILE_VECTORS * VECTOR_BYTES // itemsize


class ChannelsLastGrad:
    """grad_output grouped channels-last ``(G, N, O, Cout_g)`` (:meth:`fill`), read by
    grad_input's gather (the forward's with the roles swapped: grad_output pixels
    ``o = i·s − p + k·d`` feed input ``i``: one phase, taps ``d`` apart) and by
    grad_weight's GEMM tiles (``_gemm_kernels.grad_weight_tiles``, which take ``x`` as
    it is). ``cols``: columns per parallel iteration of the gather."""

    def __init__(self, geo: Geometry, dtype: np.dtype[np.generic], cols: int) -> None:
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
        self.geo, self.dtype, self.cols = geo, dtype, cols
        axes = [grad_input_axis(*a) for a in geo.axes()]
        self.tables = [np.ascontiguousarray(a.table) for a in axes]
        self.dest, self.row, _ = skewed(pack_offsets(axes, cin_g, cout_g), cin_g)
        self.pixels = math.prod(geo.output)
        self.sn = source_stride(self.pixels, cout_g)
        # a tile reads a whole row of channels, past the last real one at the very end
        self.gys = np.zeros(G * N * self.sn + tile_width(dtype.itemsize), dtype=dtype)
        self.wpi = np.empty(G * cin_g * self.row, dtype=dtype)
        self.no_bias = np.zeros(G * cin_g, dtype=dtype)
        self.phase_tables = [np.ascontiguousarray(phase_axis(*a).table) for a in geo.axes()]
        self.chunk = max(1, TILE_CHUNK // self.sn)

    def fill(self, gyf: Array) -> None:
        from . import _layout_kernels as lay

        geo = self.geo
        lay.to_channels_last(gyf, self.gys, geo.batch, geo.groups, geo.cout_g, self.pixels, self.sn)

    def grad_weight(self, xf: Array, gw: Array) -> None:
        from . import _gemm_kernels as gemm

        geo = self.geo
        gemm.grad_weight_tiles(
            self.gys, xf, gw, geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input,
            geo.output, geo.kernel, geo.stride, self.sn, self.chunk, *self.phase_tables,
        )  # fmt: skip

    def grad_input(self, wf: Array) -> Array:
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        geo = self.geo
        G, cin_g, cout_g = geo.groups, geo.cin_g, geo.cout_g
        lay.pack_weights(wf, self.wpi, G, cin_g, cout_g, self.dest, self.row, True, False)
        gx = np.empty(geo.batch * G * cin_g * math.prod(geo.input), dtype=self.dtype)
        gi_d, gi_h, gi_w = self.tables
        kern.gather(
            self.gys, self.wpi, self.no_bias, gx, geo.batch, G, cout_g, cin_g, geo.output,
            geo.input, (1, 1, 1), geo.kernel, geo.dilation, gi_d, gi_h, gi_w, self.cols,
            (self.sn, self.row),
        )  # fmt: skip
        return gx


def tile_rows(inputs: int) -> int:
    """Rows of grad_input's tiles for ``inputs`` along W: 4 where that leaves fewer rows
    empty, else 6 (24 accumulators rather than 16: one vector load per 6 multiply-adds
    rather than per 4)."""
    return 4 if -(-inputs // 4) * 4 < -(-inputs // 6) * 6 else 6


def padded_extent(I: int, O: int, K: int, s: int, p: int, d: int) -> int:
    """Along one dimension, grad_output padded by ``p`` in front and far enough behind
    that input ``i`` and tap ``k`` land at ``i·s + k·d`` inside it."""
    return max(O + p, (I - 1) * s + (K - 1) * d + 1)


def padded_grad_bytes(geo: Geometry, itemsize: int) -> int:
    """:class:`PaddedGrad`'s scratch: the padded grad_output and the packed weight."""
    extent = math.prod(padded_extent(*a) for a in geo.axes())
    cip = -(-geo.cin_g // tile_width(itemsize)) * tile_width(itemsize)
    taps = math.prod(geo.kernel)
    return (
        geo.batch * geo.groups * geo.cout_g * extent + geo.groups * geo.cout_g * taps * cip
    ) * itemsize


class PaddedGrad:
    """grad_input on GEMM tiles (``_gemm_kernels.grad_input_tiles``): grad_output copied
    into the interior of a zero-bordered NC(D)HW buffer, so that every tap of every input
    reads inside it (zeros where it misses the output), and the weight packed with input
    channels innermost. The borders and padding lanes are zeroed once, here."""

    def __init__(self, geo: Geometry, dtype: np.dtype[np.generic]) -> None:
        self.geo, self.dtype = geo, dtype
        ext = [padded_extent(*a) for a in geo.axes()]
        self.extent: Dims = (ext[0], ext[1], ext[2])
        width = tile_width(dtype.itemsize)
        self.cip = -(-geo.cin_g // width) * width
        cout = geo.groups * geo.cout_g
        self.gyp = np.zeros(geo.batch * cout * math.prod(self.extent), dtype=dtype)
        self.wpk = np.zeros(cout * math.prod(geo.kernel) * self.cip, dtype=dtype)

    def grad_input(self, gyf: Array, wf: Array) -> Array:
        from . import _gemm_kernels as gemm
        from . import _layout_kernels as lay

        geo = self.geo
        G, cin_g, cout_g = geo.groups, geo.cin_g, geo.cout_g
        lay.to_padded(gyf, self.gyp, geo.batch * G * cout_g, geo.output, self.extent, geo.padding)
        lay.pack_channels_inner(wf, self.wpk, G, cin_g, cout_g, math.prod(geo.kernel), self.cip)
        gx = np.empty(geo.batch * G * cin_g * math.prod(geo.input), dtype=self.dtype)
        gemm.grad_input_tiles(
            self.gyp, self.wpk, gx, geo.batch, G, cin_g, cout_g, geo.input, self.extent,
            geo.kernel, geo.stride, geo.dilation, self.cip, tile_rows(geo.input[2]),
        )  # fmt: skip
        return gx
