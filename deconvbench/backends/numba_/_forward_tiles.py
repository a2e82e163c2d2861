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
from ._grad_operands import tile_rows, tile_width


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


def _border(I: int, O: int, K: int, s: int, p: int, d: int) -> tuple[int, int]:
    """``(front, extent)``: the zero border in front of the input and the bordered length,
    so that every slot of every output reads inside it."""
    first, slots, step = phase_offsets(I, O, K, s, p, d)
    front = max(0, -min(first))
    last = max(-(-(O - r) // s) - 1 + first[r] + (slots - 1) * step for r in range(s))
    return front, front + max(I, last + 1)


def forward_tiles_fit(geo: Geometry, itemsize: int, fill: float, panel_bytes: int) -> bool:
    """Whether the forward's tiles are mostly full: output channels fill ``fill`` of
    their lanes, a phase's outputs along W fill its rows and every phase has every tap
    slot (``s`` divides ``k·d``'s span: no slot multiplies zero weights), and a tile's
    weights (slots × input channels × a tile row) stay within ``panel_bytes``."""
    width = tile_width(itemsize)
    axes = [phase_offsets(*a) for a in geo.axes()]
    slots = math.prod(a[1] for a in axes)
    phases = math.prod(geo.stride)
    full_slots = slots * phases == math.prod(geo.kernel)
    qw = -(-geo.output[2] // geo.stride[2])
    lanes = geo.cout_g / (-(-geo.cout_g // width) * width)
    rows = qw / (-(-qw // tile_rows(qw)) * tile_rows(qw))
    panel = slots * geo.cin_g * width * itemsize
    return full_slots and min(lanes, rows) >= fill and panel <= panel_bytes


def forward_tiles_bytes(geo: Geometry, itemsize: int) -> int:
    """The bordered input and the packed weight."""
    extent = math.prod(_border(*a)[1] for a in geo.axes())
    width = tile_width(itemsize)
    cop = -(-geo.cout_g // width) * width
    slots = math.prod(phase_offsets(*a)[1] for a in geo.axes())
    xb = geo.groups * geo.batch * (extent * geo.cin_g + GATHER_SKEW)
    return (xb + geo.groups * math.prod(geo.stride) * slots * geo.cin_g * cop) * itemsize


def forward_tiles_call(
    problem: Problem, geo: Geometry, x: Array, weight: Array, bias: Array | None
) -> Call:
    from . import _gemm_forward as gemm
    from . import _layout_kernels as lay

    dtype = np.dtype(problem.dtype)
    N, G, cin_g, cout_g = geo.batch, geo.groups, geo.cin_g, geo.cout_g
    xf, wf = flat(x, dtype), flat(weight, dtype)
    bf = bias_or_zeros(bias, problem.out_channels, dtype)
    axes = [phase_offsets(*a) for a in geo.axes()]
    borders = [_border(*a) for a in geo.axes()]
    front: Dims = (borders[0][0], borders[1][0], borders[2][0])
    ext: Dims = (borders[0][1], borders[1][1], borders[2][1])
    first = np.zeros((3, max(geo.stride)), dtype=np.int64)
    for dim, (offsets, _, _) in enumerate(axes):
        first[dim, : len(offsets)] = [o + front[dim] for o in offsets]
    Jd, Jh, Jw = (a[1] for a in axes)
    ed, eh, ew = (a[2] for a in axes)
    width = tile_width(dtype.itemsize)
    cop = -(-cout_g // width) * width
    sn = math.prod(ext) * cin_g + GATHER_SKEW
    xb = np.zeros(G * N * sn, dtype=dtype)
    wp = np.zeros(G * math.prod(geo.stride) * Jd * Jh * Jw * cin_g * cop, dtype=dtype)
    dest = _pack_dest(geo, axes, cop)
    _, Xh, Xw = ext
    at = (N * sn, sn, Xh * Xw * cin_g, Xw * cin_g, cin_g)
    slot = cin_g * cop  # one slot's rows in the packed weight
    v_steps = (Jh * Jw * slot, Jw * slot, slot, cop)
    s_steps = (ed * Xh * Xw * cin_g, eh * Xw * cin_g, ew * cin_g, 1)
    counts = (Jd, Jh, Jw, cin_g)
    Q: Dims = (
        -(-geo.output[0] // geo.stride[0]),
        -(-geo.output[1] // geo.stride[1]),
        -(-geo.output[2] // geo.stride[2]),
    )
    rows = tile_rows(Q[2])
    size = math.prod(problem.y_shape)

    def call() -> Array:
        lay.to_padded_channels_last(xf, xb, N, G, cin_g, geo.input, ext, front, sn)
        gemm.pack_phase_weights(wf, wp, G, cin_g, cout_g, dest, cop)
        y = np.empty(size, dtype=dtype)
        gemm.forward_tiles(
            xb, wp, bf, y, N, G, cout_g, geo.output, geo.stride, Q, first, at,
            Jd * Jh * Jw * slot, v_steps, s_steps, counts, cop, rows,
        )  # fmt: skip
        return y.reshape(problem.y_shape)

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
