"""``numba/tiled``'s forward on GEMM tiles (``_gemm_forward.forward_tiles``): the input
laid channels-last inside a zero border, the weight packed per phase with output
channels innermost, and the steps that walk them, all set up once here."""

from __future__ import annotations

import math

import numpy as np

from ...problem import Problem
from ..strategy import Array
from ._common import Call, bias_or_zeros, flat
from ._geometry import GATHER_SKEW, Dims, Geometry
from ._grad_operands import lane_vectors, padded_lanes, tile_rows, tile_width


def phase_offsets(I: int, O: int, K: int, s: int, p: int, d: int) -> tuple[list[int], int, int]:
    """Along one dimension: per phase ``r`` the input offset of its first tap slot (output
    ``r + s·q`` reads input ``q + first[r] + j·step`` for slot ``j``), the slots per phase
    and ``step`` (``_geometry.forward_axis``'s order: taps by increasing input)."""
    step = d // math.gcd(s, d)
    first, slots = [], 1
    for r in range(s):
        offsets = sorted((r + p - k * d) // s for k in range(K) if (r + p - k * d) % s == 0)
        first.append(offsets[0] if offsets else 0)
        slots = max(slots, len(offsets))
    return first, slots, step


def phase_slots(I: int, O: int, K: int, s: int, p: int, d: int) -> list[int]:
    """Along one dimension: per phase ``r``, how many of the slots of
    :func:`phase_offsets` hold a tap (fewer than the most where ``s`` does not divide
    ``k·d``'s span; none where ``s > k``)."""
    return [sum(1 for k in range(K) if (r + p - k * d) % s == 0) for r in range(s)]


def _border(I: int, O: int, K: int, s: int, p: int, d: int) -> tuple[int, int]:
    """``(front, extent)``: the zero border in front of the input and the bordered length,
    so that every slot of every output reads inside it."""
    first, slots, step = phase_offsets(I, O, K, s, p, d)
    front = max(0, -min(first))
    last = max(-(-(O - r) // s) - 1 + first[r] + (slots - 1) * step for r in range(s))
    return front, front + max(I, last + 1)


def output_lanes(geo: Geometry, itemsize: int) -> tuple[int, int]:
    """``(vectors, cop)``: the forward tiles' row width in vectors, and the output
    channels padded to whole rows of it (``_grad_operands.lane_vectors``)."""
    vectors = lane_vectors(geo.cout_g, itemsize)
    return vectors, padded_lanes(geo.cout_g, itemsize, vectors)


def forward_tiles_fit(geo: Geometry, itemsize: int, fill: float, panel_bytes: int) -> bool:
    """Whether the forward's tiles are mostly full: output channels fill ``fill`` of
    their lanes and a phase's outputs along W fill its rows, and a tile's weights (slots
    × input channels × a tile row) stay within ``panel_bytes``. (Each phase reduces over
    its own taps only, so phases with fewer taps than others waste nothing.)"""
    vectors, cop = output_lanes(geo, itemsize)
    slots = math.prod(phase_offsets(*a)[1] for a in geo.axes())
    qw = -(-geo.output[2] // geo.stride[2])
    per_tile = tile_rows(qw, vectors)
    rows = qw / (-(-qw // per_tile) * per_tile)
    panel = slots * geo.cin_g * tile_width(itemsize, vectors) * itemsize
    return min(geo.cout_g / cop, rows) >= fill and panel <= panel_bytes


def forward_tiles_bytes(geo: Geometry, itemsize: int) -> int:
    """The bordered input and the packed weight."""
    extent = math.prod(_border(*a)[1] for a in geo.axes())
    _, cop = output_lanes(geo, itemsize)
    slots = math.prod(phase_offsets(*a)[1] for a in geo.axes())
    xb = geo.groups * geo.batch * (extent * geo.cin_g + GATHER_SKEW)
    return (xb + geo.groups * math.prod(geo.stride) * slots * geo.cin_g * cop) * itemsize


class ForwardTiles:
    """The forward of ``geo`` on GEMM tiles, scratch allocated once, here.

    ``dest`` (default: ``geo``'s own taps, :func:`_pack_dest`) places each tap of the
    weight passed in, ``(G·Cin_g, w_cout_g, K)``, in the packed ``(G, phases, slots,
    Cin_g, cop)``: a row offset plus a lane offset (the fused form, whose ``geo`` has
    ``P·Cout/g`` output channels, puts each real tap at its phase's channels)."""

    def __init__(
        self,
        geo: Geometry,
        dtype: np.dtype[np.generic],
        w_cout_g: int | None = None,
        dest: np.ndarray | None = None,
    ) -> None:
        self.geo, self.dtype = geo, dtype
        self.w_cout_g = geo.cout_g if w_cout_g is None else w_cout_g
        N, G, cin_g = geo.batch, geo.groups, geo.cin_g
        axes = [phase_offsets(*a) for a in geo.axes()]
        borders = [_border(*a) for a in geo.axes()]
        self.front: Dims = (borders[0][0], borders[1][0], borders[2][0])
        self.ext: Dims = (borders[0][1], borders[1][1], borders[2][1])
        self.first = np.zeros((3, max(geo.stride)), dtype=np.int64)
        self.slots = np.zeros((3, max(geo.stride)), dtype=np.int64)
        for dim, (offsets, _, _) in enumerate(axes):
            self.first[dim, : len(offsets)] = [o + self.front[dim] for o in offsets]
        for dim, axis in enumerate(geo.axes()):
            self.slots[dim, : axis[3]] = phase_slots(*axis)
        Jd, Jh, Jw = (a[1] for a in axes)
        ed, eh, ew = (a[2] for a in axes)
        self.vectors, cop = output_lanes(geo, dtype.itemsize)
        self.cop = cop
        self.sn = sn = math.prod(self.ext) * cin_g + GATHER_SKEW
        self.xb = np.zeros(G * N * sn, dtype=dtype)
        self.wp = np.zeros(G * math.prod(geo.stride) * Jd * Jh * Jw * cin_g * cop, dtype=dtype)
        self.dest = _pack_dest(geo, axes, cop) if dest is None else dest
        _, Xh, Xw = self.ext
        self.at = (N * sn, sn, Xh * Xw * cin_g, Xw * cin_g, cin_g)
        slot = cin_g * cop  # one slot's rows in the packed weight
        self.v_phase = Jd * Jh * Jw * slot
        self.nest = (
            (Jh * Jw * slot, Jw * slot, slot, cop),
            (ed * Xh * Xw * cin_g, eh * Xw * cin_g, ew * cin_g, 1),
            (Jd, Jh, Jw, cin_g),
        )
        q = [-(-o // s) for o, s in zip(geo.output, geo.stride, strict=True)]
        self.Q: Dims = (q[0], q[1], q[2])
        self.rows = tile_rows(self.Q[2], self.vectors)

    def __call__(self, xf: Array, wf: Array, bf: Array) -> Array:
        """``y`` (flat NC(D)HW) from flat ``x``, weight and bias (``G·Cout/g`` of it)."""
        from . import _gemm_forward as gemm
        from . import _layout_kernels as lay

        geo = self.geo
        N, G, cin_g = geo.batch, geo.groups, geo.cin_g
        lay.to_padded_channels_last(
            xf, self.xb, N, G, cin_g, geo.input, self.ext, self.front, self.sn
        )
        lay.pack_lanes(wf, self.wp, G, cin_g, self.w_cout_g, self.dest, self.cop, False)
        y = np.empty(N * G * geo.cout_g * math.prod(geo.output), dtype=self.dtype)
        gemm.forward_tiles(
            self.xb, self.wp, bf, y, N, G, geo.cout_g, geo.output, geo.stride, self.Q,
            self.first, self.slots, self.at, self.v_phase, *self.nest, self.cop, self.rows,
            self.vectors,
        )  # fmt: skip
        return y


def forward_tiles_call(
    problem: Problem, geo: Geometry, x: Array, weight: Array, bias: Array | None
) -> Call:
    dtype = np.dtype(problem.dtype)
    xf, wf = flat(x, dtype), flat(weight, dtype)
    bf = bias_or_zeros(bias, problem.out_channels, dtype)
    tiles = ForwardTiles(geo, dtype)

    def call() -> Array:
        return tiles(xf, wf, bf).reshape(problem.y_shape)

    return call


def _pack_dest(geo: Geometry, axes: list[tuple[list[int], int, int]], cop: int) -> np.ndarray:
    """Per tap ``k`` (row-major over the 3-D kernel): where its rows start in a group's
    packed weight ``(phases, slots, Cin_g, cop)``. Tap ``k`` feeds phase
    ``r = (k·d − p) mod s`` from input offset ``(r + p − k·d) / s``, slot
    ``(offset − first[r]) / step``."""
    J = [a[1] for a in axes]
    slots_of = []
    for (_, _, K, s, p, d), (first, _, step) in zip(geo.axes(), axes, strict=True):
        per_tap = []
        for k in range(K):
            r = (k * d - p) % s
            per_tap.append((r, ((r + p - k * d) // s - first[r]) // step))
        slots_of.append(per_tap)
    _, Ph, Pw = geo.stride
    dest = []
    for kd in range(geo.kernel[0]):
        for kh in range(geo.kernel[1]):
            for kw in range(geo.kernel[2]):
                (pd, jd), (ph, jh), (pw, jw) = slots_of[0][kd], slots_of[1][kh], slots_of[2][kw]
                phase = (pd * Ph + ph) * Pw + pw
                slot = (jd * J[1] + jh) * J[2] + jw
                dest.append((phase * math.prod(J) + slot) * geo.cin_g * cop)
    return np.array(dest, dtype=np.int64)
