"""grad_output re-laid for ``numba/tiled``'s backward, with the steps that read each layout.

* :class:`ChannelsLastGrad`: grouped channels-last, with or without a zero border: the
  source of grad_input's gather, the vectors of grad_weight's GEMM tiles and the
  broadcast rows of grad_input's (:class:`TileGradInput`);
* :class:`ColumnsGrad`: columns (im2col), one row of every (tap, output channel) value
  per input pixel: the vectors of grad_weight's GEMM tiles when output channels are few.

(The third layout, per-tap planes, is ``_tap_planes``.) Scratch is allocated once, in
preparation; the layout changes run inside every timed call.
"""

from __future__ import annotations

import math

import numpy as np

from ..strategy import Array
from ._geometry import (
    GATHER_SKEW,
    NARROW_VECTORS,
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


LANE_VECTORS = (TILE_VECTORS, NARROW_VECTORS)
"""The tile row widths (in SIMD vectors) the tiles choose from, widest first."""


def tile_width(itemsize: int, vectors: int = TILE_VECTORS) -> int:
    """Values in one row of a GEMM tile (``NV·VL``): 64 in float32 (32 narrow)."""
    return vectors * VECTOR_BYTES // itemsize


def padded_lanes(channels: int, itemsize: int, vectors: int = TILE_VECTORS) -> int:
    """``channels`` rounded up to whole tile rows: the lanes a packed weight gives them."""
    width = tile_width(itemsize, vectors)
    return -(-channels // width) * width


def lane_vectors(channels: int, itemsize: int) -> int:
    """The tile row width, in vectors, for ``channels`` lanes: the widest of
    :data:`LANE_VECTORS` that leaves the fewest lanes empty (32 float32 channels fill a
    narrow row and half of a wide one; 64 fill both, and the wide row loads fewer
    broadcasts per multiply-add)."""
    return min(LANE_VECTORS, key=lambda v: (padded_lanes(channels, itemsize, v), -v))


class ChannelsLastGrad:
    """grad_output grouped channels-last ``(G, N, E, Cout_g)`` (:meth:`fill`), ``(g, n)``
    blocks ``sn`` apart, read by grad_input's gather (the forward's with the roles
    swapped: grad_output pixels ``o = i·s − p + k·d`` feed input ``i``: one phase, taps
    ``d`` apart), by grad_weight's GEMM tiles (``_gemm_kernels.grad_weight_tiles``, which
    take ``x`` as it is) and by grad_input's (:class:`TileGradInput`).

    ``padded``: the image sits inside a zero border (``E`` = :func:`padded_extent`, at
    offset ``p``), so that grad_input's tiles find every tap of every input inside it;
    otherwise ``E`` is the output and there is no border (the gather's layout). ``cols``:
    columns per parallel iteration of the gather."""

    def __init__(self, geo: Geometry, dtype: np.dtype[np.generic], cols: int, padded: bool) -> None:
        N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
        self.geo, self.dtype, self.cols, self.padded = geo, dtype, cols, padded
        ext = [padded_extent(*a) for a in geo.axes()] if padded else list(geo.output)
        self.extent: Dims = (ext[0], ext[1], ext[2])
        self.offset: Dims = geo.padding if padded else (0, 0, 0)
        axes = [grad_input_axis(*a) for a in geo.axes()]
        self.tables = [np.ascontiguousarray(a.table) for a in axes]
        self.dest, self.row, _ = skewed(pack_offsets(axes, cin_g, cout_g), cin_g)
        self.pixels = math.prod(geo.output)
        self.sn = source_stride(math.prod(self.extent), cout_g)
        # a tile reads a whole row of channels, past the last real one at the very end
        self.gys = np.zeros(G * N * self.sn + tile_width(dtype.itemsize), dtype=dtype)
        self.wpi = np.empty(0 if padded else G * cin_g * self.row, dtype=dtype)
        self.no_bias = np.zeros(G * cin_g, dtype=dtype)
        self.phase_tables = [np.ascontiguousarray(phase_axis(*a).table) for a in geo.axes()]
        self.chunk = max(1, TILE_CHUNK // self.sn)
        self.weight_vectors = lane_vectors(cout_g, dtype.itemsize)  # grad_weight's tile width

    def fill(self, gyf: Array) -> None:
        from . import _layout_kernels as lay

        geo, N, G, cout_g = self.geo, self.geo.batch, self.geo.groups, self.geo.cout_g
        if self.padded:
            lay.to_padded_channels_last(
                gyf, self.gys, N, G, cout_g, geo.output, self.extent, self.offset, self.sn
            )
        else:
            lay.to_channels_last(gyf, self.gys, N, G, cout_g, self.pixels, self.sn)

    def grad_weight(self, xf: Array, gw: Array) -> None:
        from . import _gemm_kernels as gemm

        geo = self.geo
        gemm.grad_weight_tiles(
            self.gys, xf, gw, geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input,
            self.extent, self.offset, geo.kernel, geo.stride, self.sn, self.chunk,
            self.phase_tables[0], self.phase_tables[1], self.phase_tables[2],
            self.weight_vectors,
        )  # fmt: skip

    def grad_input(self, wf: Array) -> Array:
        """grad_input by the gather (the layout without a border)."""
        from . import _layout_kernels as lay
        from . import _tiled_kernels as kern

        assert not self.padded  # the gather's tables address the output without a border
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


TILE_ROW_CHOICES = {TILE_VECTORS: (6, 4), NARROW_VECTORS: (8, 6)}
"""Rows a tile of so many vectors may have, preferred first (the tile intrinsics that
exist: 6×4, 4×4, 8×2, 6×2). More rows load one vector per more multiply-adds; fewer leave
fewer rows empty at the end of an image row."""


def tile_rows(inputs: int, vectors: int = TILE_VECTORS) -> int:
    """Rows of the forward's and grad_input's tiles for ``inputs`` along W: the choice of
    :data:`TILE_ROW_CHOICES` that leaves the fewest rows empty, the first on a tie."""
    return min(TILE_ROW_CHOICES[vectors], key=lambda rows: -(-inputs // rows) * rows)


def padded_extent(I: int, O: int, K: int, s: int, p: int, d: int) -> int:
    """Along one dimension, grad_output padded by ``p`` in front and far enough behind
    that input ``i`` and tap ``k`` land at ``i·s + k·d`` inside it."""
    return max(O + p, (I - 1) * s + (K - 1) * d + 1)


def channels_last_bytes(geo: Geometry, itemsize: int, padded: bool) -> int:
    """:class:`ChannelsLastGrad`'s grad_output (and the gather's packed weight)."""
    extent = math.prod(padded_extent(*a) for a in geo.axes()) if padded else math.prod(geo.output)
    cin, cout = geo.groups * geo.cin_g, geo.groups * geo.cout_g
    gys = geo.batch * (cout * extent + geo.groups * GATHER_SKEW) + tile_width(itemsize)
    packed = 0 if padded else cin * geo.cout_g * math.prod(geo.kernel) + cin * GATHER_SKEW
    return (gys + packed + cin) * itemsize


def tile_grad_input_bytes(geo: Geometry, itemsize: int) -> int:
    """:class:`TileGradInput`'s packed weight."""
    cip = padded_lanes(geo.cin_g, itemsize, lane_vectors(geo.cin_g, itemsize))
    return geo.groups * geo.cout_g * math.prod(geo.kernel) * cip * itemsize


class TileGradInput:
    """grad_input on GEMM tiles (``_gemm_kernels.grad_input_tiles``) from the bordered
    channels-last grad_output of a :class:`ChannelsLastGrad`, with the weight packed input
    channels innermost (its padding lanes zeroed once, here). (Reading grad_weight's
    columns instead, one flat reduction per tile, measured no faster on the DCGAN image
    layer.)"""

    def __init__(self, source: ChannelsLastGrad) -> None:
        assert source.padded
        geo = source.geo
        self.source, self.geo = source, geo
        self.vectors = lane_vectors(geo.cin_g, source.dtype.itemsize)
        self.cip = cip = padded_lanes(geo.cin_g, source.dtype.itemsize, self.vectors)
        self.rows = tile_rows(geo.input[2], self.vectors)
        cout = geo.groups * geo.cout_g
        taps = math.prod(geo.kernel)
        self.wpk = np.zeros(cout * taps * cip, dtype=source.dtype)
        # packed (G, K, Cout_g, cip): tap k's rows start k·Cout_g·cip into a group's part
        self.dest = np.arange(taps, dtype=np.int64) * geo.cout_g * cip
        self.v_group = taps * geo.cout_g * cip
        self.at, self.nest = _tile_steps(source, cip)

    def grad_input(self, wf: Array) -> Array:
        from . import _gemm_kernels as gemm
        from . import _layout_kernels as lay

        geo = self.geo
        G, cin_g, cout_g = geo.groups, geo.cin_g, geo.cout_g
        lay.pack_lanes(wf, self.wpk, G, cin_g, cout_g, self.dest, self.cip, True)
        gx = np.empty(geo.batch * G * cin_g * math.prod(geo.input), dtype=self.source.dtype)
        gemm.grad_input_tiles(
            self.source.gys, self.wpk, gx, geo.batch, G, cin_g, geo.input, self.cip,
            self.rows, self.vectors, self.at, self.v_group, *self.nest,
        )  # fmt: skip
        return gx


Nest = tuple[int, int, int, int]


def _tile_steps(
    source: ChannelsLastGrad, cip: int
) -> tuple[tuple[int, int, int, int, int], tuple[Nest, Nest, Nest]]:
    """``(at, (v_steps, s_steps, counts))`` of ``grad_input_tiles`` on bordered
    channels-last grad_output: where an input pixel's taps start (per group, entry, and
    input along D, H and W) and the reduction nest over ``(tap, output channel)`` in the
    packed weight and in grad_output."""
    geo = source.geo
    Kd, Kh, Kw = geo.kernel
    cout_g = geo.cout_g
    (sd, sh, sw), (dd, dh, dw) = geo.stride, geo.dilation
    _, Eh, Ew = source.extent
    pix, sn, tap = cout_g, source.sn, cout_g * cip
    at = (geo.batch * sn, sn, sd * Eh * Ew * pix, sh * Ew * pix, sw * pix)
    if cout_g >= Kw:  # the longest loop innermost: consecutive weight rows and values
        nest = (
            (Kh * Kw * tap, Kw * tap, tap, cip),
            (dd * Eh * Ew * pix, dh * Ew * pix, dw * pix, 1),
            (Kd, Kh, Kw, cout_g),
        )
    else:
        nest = (
            (cip, Kh * Kw * tap, Kw * tap, tap),
            (1, dd * Eh * Ew * pix, dh * Ew * pix, dw * pix),
            (cout_g, Kd, Kh, Kw),
        )
    return at, nest


def columns_width(geo: Geometry) -> int:
    """``J``: the ``(tap, output channel)`` pairs of one group, a column row's values."""
    return geo.cout_g * math.prod(geo.kernel)


def narrow_columns(J: int, itemsize: int) -> bool:
    """Whether grad_weight's column tiles are 8 rows × 3 vectors (``_gemm_kernels.tile8x3``)
    rather than 6 × 4: where that leaves fewer lanes of a row of ``J`` values empty."""
    wide, narrow = tile_width(itemsize), tile_width(itemsize) * 3 // 4
    return -(-J // narrow) * narrow < -(-J // wide) * wide


def _partial_size(geo: Geometry, itemsize: int) -> int:
    """Values of grad_weight_columns' per-entry partial sums."""
    J = columns_width(geo)
    narrow = narrow_columns(J, itemsize)
    rows, width = (8, tile_width(itemsize) * 3 // 4) if narrow else (6, tile_width(itemsize))
    return geo.groups * geo.batch * -(-geo.cin_g // rows) * rows * -(-J // width) * width


def columns_bytes(geo: Geometry, itemsize: int) -> int:
    """:class:`ColumnsGrad`'s scratch: the columns and the per-entry partial sums."""
    col = geo.groups * geo.batch * math.prod(geo.input) * columns_width(geo)
    return (col + tile_width(itemsize) + _partial_size(geo, itemsize)) * itemsize


class ColumnsGrad:
    """grad_weight for few output channels (``_gemm_kernels.grad_weight_columns``):
    grad_output as columns, one row of every ``(tap, output channel)`` value per input
    pixel, whose rows fill the tiles' lanes where the output channels alone would not.
    The columns are copied from a bordered :class:`ChannelsLastGrad` (no bounds tests)."""

    def __init__(self, source: ChannelsLastGrad) -> None:
        assert source.padded
        geo = self.geo = source.geo
        self.source = source
        dtype = source.dtype
        width = tile_width(dtype.itemsize)
        self.J = columns_width(geo)
        self.pixels = math.prod(geo.input)
        # a tile reads a whole tile row, past the last real value at the very end
        self.col = np.zeros(geo.groups * geo.batch * self.pixels * self.J + width, dtype=dtype)
        self.narrow = narrow_columns(self.J, dtype.itemsize)
        self.partial = np.empty(_partial_size(geo, dtype.itemsize), dtype=dtype)

    def fill(self) -> None:
        """Build the columns from the source, which must be filled already."""
        from . import _layout_kernels as lay

        geo, src = self.geo, self.source
        lay.to_columns(
            src.gys, self.col, geo.batch, geo.groups, geo.cout_g, geo.input, src.extent,
            geo.kernel, geo.stride, geo.dilation, src.sn,
        )  # fmt: skip

    def grad_weight(self, xf: Array, gw: Array) -> None:
        from . import _gemm_kernels as gemm

        geo = self.geo
        N, G = geo.batch, geo.groups
        taps = math.prod(geo.kernel)
        gemm.grad_weight_columns(
            self.col, xf, gw, self.partial, N, G, geo.cin_g, geo.cout_g, taps, self.pixels,
            self.narrow,
        )  # fmt: skip
