"""The backward's GEMM-tile kernels of ``numba/tiled`` (grad_weight, grad_input).

Each is built on the outer-product micro-kernel of ``_tile_ir`` (``MR`` broadcast rows ×
``NV`` SIMD vectors of accumulators in registers, no reduction across lanes), through
the intrinsics below; their callers live in this file because an intrinsic is inlined
into them and numba's on-disk cache is invalidated per source file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba.extending import intrinsic

from ._geometry import TILE_ROWS, TILE_VECTORS
from ._jit import kernel, prange
from ._tile_ir import tile_typer

Dims = tuple[int, int, int]

MR = TILE_ROWS
NV = TILE_VECTORS


tile: Any = intrinsic(tile_typer(MR))
tile8x3: Any = intrinsic(tile_typer(8, 3))
"""A tile of 8 rows × 3 vectors (24 accumulators, 48 float32 lanes): full where rows of
48 values would leave a quarter of :func:`tile`'s 64 lanes empty (3 channels × 16 taps)."""
tile4: Any = intrinsic(tile_typer(4))
"""A tile of 4 rows (16 accumulators): fewer rows left empty where 4 divide the inputs
along W and 6 do not (8, 16, 32), for one more vector load per 4 multiply-adds."""
tile8x2: Any = intrinsic(tile_typer(8, 2))
tile6x2: Any = intrinsic(tile_typer(6, 2))
"""Narrow tiles (2 vectors: 32 float32 lanes) of 8 or 6 rows, for channel counts that fill
narrow rows better than wide ones (``_grad_operands.lane_vectors``)."""


@kernel(parallel=True)
def grad_weight_tiles(
    gys: np.ndarray,
    x: np.ndarray,
    gw: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    E: Dims,
    P: Dims,
    K: Dims,
    S: Dims,
    sn: int,
    chunk: int,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
    vectors: int,
) -> None:
    """``gw[ci, co, k] = Σ_{n, i} x[n, ci, i] · gy[n, co, i·s − p + k·d]`` by :func:`tile`
    (``vectors`` 4) or :data:`tile8x2` (2).

    ``gys`` is grad_output grouped channels-last ``(G, N, E, Cout_g)``, the image at offset
    ``P`` inside the extent ``E`` (``_grad_operands.ChannelsLastGrad``: ``(g, n)`` blocks
    ``sn`` apart, padded past its end by a tile row);
    ``x`` is the input as it is, NC(D)HW. A tile is ``MR`` (8 narrow) input channels
    (broadcast from ``x``: no re-layout) × ``vectors·VL`` output channels (vectors of
    ``gys``) of one tap; the
    reduction runs over the batch entries of a chunk and the tap's valid inputs
    (``tab_*`` are ``_geometry.PhaseAxis.table``: ``(r, c, lo, hi)`` per tap, output
    ``s·(i + c) + r``). One iteration owns a tile's input × output channels, every
    tap: it sums ``chunk`` batch entries at a time into a private block (their grad_output
    stays in L2 across the taps), then writes its part of ``gw``.
    """
    Id, Ih, Iw = I
    _, Eh, Ew = E
    pd, ph, pw = P
    Kd, Kh, Kw = K
    sd, sh, sw = S
    ktot = Kd * Kh * Kw
    vl = 64 // gys.itemsize
    width = vectors * vl  # output channels per tile
    mrt = MR if vectors == NV else 8  # input channels per tile
    nci = (Cin_g + mrt - 1) // mrt
    nco = (Cout_g + width - 1) // width
    pixels = Id * Ih * Iw
    v_steps0 = (sd * Eh * Ew * Cout_g, sh * Ew * Cout_g, sw * Cout_g)
    for item in prange(G * nci * nco):
        cb = item % nco
        rest = item // nco
        gi = rest // nci
        ci0 = mrt * (rest % nci)
        co0 = cb * width
        mr = min(mrt, Cin_g - ci0)
        block = np.zeros(ktot * mrt * width, dtype=gw.dtype)
        for n0 in range(0, N, chunk):
            nn = min(chunk, N - n0)
            for kd in range(Kd):
                dlo, dhi = tab_d[2, kd], tab_d[3, kd]
                for kh in range(Kh):
                    hlo, hhi = tab_h[2, kh], tab_h[3, kh]
                    for kw in range(Kw):
                        wlo, whi = tab_w[2, kw], tab_w[3, kw]
                        if dlo >= dhi or hlo >= hhi or wlo >= whi:
                            continue
                        od = sd * (dlo + tab_d[1, kd]) + tab_d[0, kd] + pd
                        oh = sh * (hlo + tab_h[1, kh]) + tab_h[0, kh] + ph
                        ow = sw * (wlo + tab_w[1, kw]) + tab_w[0, kw] + pw
                        v0 = (gi * N + n0) * sn + ((od * Eh + oh) * Ew + ow) * Cout_g + co0
                        s0 = ((n0 * G + gi) * Cin_g + ci0) * pixels + (dlo * Ih + hlo) * Iw + wlo
                        counts = (nn, dhi - dlo, hhi - hlo, whi - wlo)
                        v_steps = (sn, v_steps0[0], v_steps0[1], v_steps0[2])
                        s_steps = (G * Cin_g * pixels, Ih * Iw, Iw, 1)
                        c0 = ((kd * Kh + kh) * Kw + kw) * mrt * width
                        if vectors == NV:
                            tile(gys, v0, v_steps, x, s0, s_steps, pixels, mr, counts,
                                 block, c0, width)  # fmt: skip
                        else:
                            tile8x2(gys, v0, v_steps, x, s0, s_steps, pixels, mr, counts,
                                    block, c0, width)  # fmt: skip
        nc = min(width, Cout_g - co0)
        for j in range(mr):
            base = ((gi * Cin_g + ci0 + j) * Cout_g + co0) * ktot
            for tap in range(ktot):
                src = block[(tap * mrt + j) * width : (tap * mrt + j) * width + nc]
                for c in range(nc):
                    gw[base + c * ktot + tap] = src[c]


BAND = 4096
"""Values of the block in which a grad_input iteration sums its image rows (16 KiB in
float32, half of L1): it takes as many whole rows as fit, so that each channel's run
written into NC(D)HW is a band of rows, not one short row. The channels are a power of two
apart in most layers, and short runs of many of them make their lines evict each other."""


@kernel(parallel=True)
def grad_input_tiles(
    src: np.ndarray,
    wpk: np.ndarray,
    gx: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    I: Dims,
    cip: int,
    rows: int,
    vectors: int,
    at: tuple[int, int, int, int, int],
    v_group: int,
    v_steps: tuple[int, int, int, int],
    s_steps: tuple[int, int, int, int],
    counts: tuple[int, int, int, int],
) -> None:
    """``gx[n, ci, i] = Σ_{co, k} w[ci, co, k] · gy[n, co, i·s − p + k·d]`` by tiles.

    ``src`` holds, for input pixel ``i`` of entry ``n`` of group ``g``, every
    ``gy[n, g, co, i·s − p + k·d]`` (zero where that misses the output) from
    ``g·at[0] + n·at[1] + i_d·at[2] + i_h·at[3] + i_w·at[4]`` on, along the 4-level
    reduction nest ``counts`` with steps ``s_steps``; ``wpk`` the weight packed
    ``(G, K, Cout_g, cip)`` (``v_group`` per group), input channels innermost and padded
    with zeros to ``cip`` (a whole number of tile rows), walked with ``v_steps``
    (``_grad_operands.TileGradInput`` sets up both, on bordered channels-last
    grad_output). A tile is ``rows`` inputs along W (broadcast from ``src``) ×
    ``vectors·VL`` input channels (vectors of ``wpk``): 6×4 :data:`tile`, 4×4
    :data:`tile4`, 8×2 :data:`tile8x2` or 6×2 :data:`tile6x2`.
    One iteration owns a band of image rows of a tile's input channels: it sums them
    tile after tile into a private block, then writes it into ``gx`` (NC(D)HW) a channel
    at a time.
    """
    Id, Ih, Iw = I
    width = vectors * (64 // gx.itemsize)
    nci = cip // width
    nwt = (Iw + rows - 1) // rows
    pixels = Id * Ih * Iw
    span = nwt * rows * width  # one image row's block
    band = max(1, min(Ih, BAND // span))
    nband = (Ih + band - 1) // band
    for item in prange(G * nci * N * Id * nband):
        ih0 = (item % nband) * band
        rest = item // nband
        i_d = rest % Id
        rest //= Id
        n = rest % N
        rest //= N
        cb = rest % nci
        gi = rest // nci
        nh = min(band, Ih - ih0)
        block = np.zeros(nh * span, dtype=gx.dtype)
        ci0 = cb * width
        v0 = gi * v_group + ci0
        for r in range(nh):
            for wt in range(nwt):
                iw0 = wt * rows
                s0 = gi * at[0] + n * at[1] + i_d * at[2] + (ih0 + r) * at[3] + iw0 * at[4]
                mr = min(rows, Iw - iw0)
                c0 = r * span + iw0 * width
                sj = at[4]
                if vectors == NV and rows == 4:
                    tile4(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
                elif vectors == NV:
                    tile(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
                elif rows == 8:
                    tile8x2(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
                else:
                    tile6x2(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
        # out a channel at a time: each channel's rows of the band are contiguous in gx
        start = (((n * G + gi) * Cin_g + ci0) * Id + i_d) * Ih * Iw + ih0 * Iw
        for c in range(min(width, Cin_g - ci0)):
            out = gx[start + c * pixels :][: nh * Iw]
            for r in range(nh):
                for j in range(Iw):
                    out[r * Iw + j] = block[r * span + j * width + c]


@kernel(parallel=True)
def grad_weight_columns(
    col: np.ndarray,
    x: np.ndarray,
    gw: np.ndarray,
    partial: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    taps: int,
    pixels: int,
    narrow: bool,
) -> None:
    """``gw[ci, co, k] = Σ_{n, i} x[n, ci, i] · col[n, i, k, co]`` by :func:`tile` (or,
    ``narrow``, :data:`tile8x3`): for few output channels, whose taps together fill the
    tiles' lanes.

    ``col`` is grad_output's columns (``_layout_kernels.to_columns``: ``(G, N, pixels,
    taps, Cout_g)``, padded past its end by a tile row); ``x`` the input as it is,
    NC(D)HW. A tile is 6 (8) input channels (broadcast from ``x``) × 4 (3) vectors of a
    row of ``col``, summed over the pixels of one batch entry. One iteration
    owns one batch entry of one group (its columns stay in L2 across every input channel)
    and sums into its own part of ``partial``; the entries are then added in batch order,
    so the result does not depend on the thread count.
    """
    vl = 64 // gw.itemsize
    width = (3 if narrow else NV) * vl
    mrt = 8 if narrow else MR  # rows per tile
    J = taps * Cout_g
    nci = (Cin_g + mrt - 1) // mrt
    njb = (J + width - 1) // width
    block = nci * mrt * njb * width  # one entry's sums
    counts = (1, 1, 1, pixels)
    v_steps = (0, 0, 0, J)
    s_steps = (0, 0, 0, 1)
    for item in prange(G * N):
        n = item % N
        gi = item // N
        part = partial[item * block : (item + 1) * block]
        part[:] = 0
        for cb in range(nci):
            ci0 = cb * mrt
            mr = min(mrt, Cin_g - ci0)
            s0 = ((n * G + gi) * Cin_g + ci0) * pixels
            for jb in range(njb):
                v0 = item * pixels * J + jb * width
                c0 = (ci0 * njb + jb) * width
                cj = njb * width
                if narrow:
                    tile8x3(col, v0, v_steps, x, s0, s_steps, pixels, mr, counts, part, c0, cj)
                else:
                    tile(col, v0, v_steps, x, s0, s_steps, pixels, mr, counts, part, c0, cj)
    for item in prange(G * Cin_g):
        ci = item % Cin_g
        gi = item // Cin_g
        out = gw[item * J : (item + 1) * J]
        out[:] = 0
        for n in range(N):
            part = partial[(gi * N + n) * block + ci * njb * width :][:J]
            for co in range(Cout_g):
                for k in range(taps):
                    out[co * taps + k] += part[k * Cout_g + co]
