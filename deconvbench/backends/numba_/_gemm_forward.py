"""The forward's GEMM-tile kernel of ``numba/tiled``.

Built on the outer-product micro-kernel of ``_tile_ir`` through the intrinsics below
(their callers live in this file: an intrinsic is inlined into them, and numba's on-disk
cache is invalidated per source file).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba.extending import intrinsic

from ._geometry import TILE_ROWS, TILE_VECTORS
from ._jit import kernel, prange
from ._tile_ir import tile_typer

Dims = tuple[int, int, int]

tile: Any = intrinsic(tile_typer(TILE_ROWS))
tile4: Any = intrinsic(tile_typer(4))
tile8x2: Any = intrinsic(tile_typer(8, 2))
tile6x2: Any = intrinsic(tile_typer(6, 2))

BAND = 4096
"""Values of the block in which one iteration sums its rows of outputs (16 KiB in float32,
half of L1): as many whole rows as fit, so that each channel's writes into NC(D)HW come in
bands rather than single short rows."""


@kernel(parallel=True)
def forward_tiles(
    xb: np.ndarray,
    wp: np.ndarray,
    bias: np.ndarray,
    y: np.ndarray,
    N: int,
    G: int,
    Cout_g: int,
    O: Dims,
    S: Dims,
    Q: Dims,
    first: np.ndarray,
    slots: np.ndarray,
    at: tuple[int, int, int, int, int],
    v_phase: int,
    v_steps: tuple[int, int, int, int],
    s_steps: tuple[int, int, int, int],
    counts: tuple[int, int, int, int],
    cop: int,
    rows: int,
    vectors: int,
) -> None:
    """``y[n, co, o] = bias[co] + Σ_{ci, k} x[n, ci, (o + p − k·d) / s] · w[ci, co, k]`` by
    tiles, phase by phase (the sub-pixel decomposition).

    Output ``o = r + s·q`` along each dimension (phase ``r``) reads, for its tap slot
    ``j < slots[dim, r]``, the input at ``q + first[dim, r] + j·step`` of ``xb``: the input grouped
    channels-last inside a zero border (``at``: ``(g, n)`` block and D, H, W pixel
    strides; the border makes every slot of every output read inside it, zeros where
    it misses the input); the reduction nest over slots and input channels is
    ``counts`` (its slot counts those of the phase) with steps ``s_steps`` in ``xb`` and
    ``v_steps`` in ``wp``, the weight
    packed per phase with output channels innermost (``v_phase`` per phase, output
    channels padded to ``cop``). A tile is ``rows`` outputs of one phase along W
    (broadcast from ``xb``, one pixel apart) × ``vectors·VL`` output channels (6×4, 4×4,
    8×2 or 6×2). One iteration owns a band of output rows of one phase and a tile's
    output channels: it sums them
    tile after tile into a private block, then writes them out a channel at a time.
    ``Q``: the most outputs a phase has along each dimension (``ceil(O / s)``).
    """
    Od, Oh, Ow = O
    sd, sh, sw = S
    Qd, Qh, Qw = Q
    width = vectors * (64 // y.itemsize)
    ncb = cop // width
    nwt = (Qw + rows - 1) // rows
    span = nwt * rows * width
    band = max(1, min(Qh, BAND // span))
    nband = (Qh + band - 1) // band
    phases = sd * sh * sw
    plane = Od * Oh * Ow
    for item in prange(G * ncb * N * phases * Qd * nband):
        qh0 = (item % nband) * band
        rest = item // nband
        qd = rest % Qd
        rest //= Qd
        phase = rest % phases
        rest //= phases
        n = rest % N
        rest //= N
        cb = rest % ncb
        gi = rest // ncb
        rw = phase % sw
        rh = (phase // sw) % sh
        rd = phase // (sw * sh)
        od = rd + sd * qd
        nq = (Ow - rw + sw - 1) // sw  # this phase's outputs along W
        nh = min(band, (Oh - rh + sh - 1) // sh - qh0)
        if od >= Od or nh <= 0 or nq <= 0:
            continue
        block = np.zeros(nh * span, dtype=y.dtype)
        nest = (slots[0, rd], slots[1, rh], slots[2, rw], counts[3])  # this phase's taps
        co0 = cb * width
        v0 = (gi * phases + phase) * v_phase + co0
        base = gi * at[0] + n * at[1] + (qd + first[0, rd]) * at[2] + first[2, rw] * at[4]
        for r in range(nh):
            s_row = base + (qh0 + r + first[1, rh]) * at[3]
            for q0 in range(0, nq, rows):
                mr = min(rows, nq - q0)
                s0 = s_row + q0 * at[4]
                c0 = r * span + q0 * width
                sj = at[4]
                if vectors == TILE_VECTORS and rows == 4:
                    tile4(wp, v0, v_steps, xb, s0, s_steps, sj, mr, nest, block, c0, width)
                elif vectors == TILE_VECTORS:
                    tile(wp, v0, v_steps, xb, s0, s_steps, sj, mr, nest, block, c0, width)
                elif rows == 8:
                    tile8x2(wp, v0, v_steps, xb, s0, s_steps, sj, mr, nest, block, c0, width)
                else:
                    tile6x2(wp, v0, v_steps, xb, s0, s_steps, sj, mr, nest, block, c0, width)
        # out a channel at a time, every output of the band's rows in this phase
        for c in range(min(width, Cout_g - co0)):
            co = gi * Cout_g + co0 + c
            out0 = (n * G * Cout_g + co) * plane + od * Oh * Ow
            b = bias[co]
            for r in range(nh):
                dst = y[out0 + (rh + sh * (qh0 + r)) * Ow :][:Ow]
                src = block[r * span + c :]
                for q in range(nq):
                    dst[rw + sw * q] = src[q * width] + b
