"""Layout changes of ``numba/tiled``, done inside every timed call.

All arrays are flat (1-D, C order); shapes are passed as integers and 3-tuples, so each
kernel compiles once per dtype. Each parallel iteration writes its own part of the
output. Layouts (``g``: groups; ``C_g``: channels per group; spatial as 3-D):

* grouped channels-last ``(g, N, D, H, W, C_g)``: the source of a gather (its batch
  entries a little more than their size apart, ``_geometry.GATHER_SKEW``);
* packed weights ``(g, phases, Ct, slots, Cs)``: per phase and target channel, the taps in
  the order a gather reads them, source channel innermost;
* batch-innermost ``(C, D, H, W, N)`` and per-tap planes ``(C, sd, sh, Kw, Qd, Qh, W, N)``:
  the operands of grad_weight and of the small-channel grad_input (channels and planes a
  little more than their size apart).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, prange

Dims = tuple[int, int, int]

TILE_C = 32
TILE_P = 32
"""Channels × pixels of one tile of a channels-last transpose (about 4 KiB in float32)."""

PACK_TILE = 16
"""Target × source channels of one tile of :func:`pack_weights` (and lane channels of one
of :func:`pack_lanes`): a cache line of float32."""

# Inner loops index slices with counters that start at 0: numba then knows no index is
# negative and drops its wrap-around test, which otherwise costs more than the copy.


@kernel(parallel=True)
def to_channels_last(
    a: np.ndarray, out: np.ndarray, N: int, G: int, Cg: int, P: int, sn: int
) -> None:
    """``(N, G·Cg, P)`` → ``(G, N, P, Cg)`` (``P``: pixels per channel), each ``(g, n)``
    block ``sn >= P·Cg`` past the previous one (the gap is left as it is).

    Tiles of ``TILE_C`` channels × ``TILE_P`` pixels, read a channel at a time (a short
    contiguous run) and written across the tile's pixels: the tile's output lines stay in
    L1 until they are whole. (Reading across channels instead strides by the plane size,
    a power of two in most layers, and the lines read then evict each other.)
    """
    nblk = (P + TILE_P - 1) // TILE_P
    for item in prange(G * N * nblk):
        blk = item % nblk
        gn = item // nblk
        n = gn % N
        gi = gn // N
        p0 = blk * TILE_P
        p1 = min(P, p0 + TILE_P)
        src = a[(n * G + gi) * Cg * P : (n * G + gi + 1) * Cg * P].reshape(Cg, P)
        dst = out[gn * sn : gn * sn + P * Cg].reshape(P, Cg)
        for c0 in range(0, Cg, TILE_C):
            c1 = min(Cg, c0 + TILE_C)
            s = src[c0:c1, p0:p1]
            d = dst[p0:p1, c0:c1]
            for j in range(c1 - c0):
                for i in range(p1 - p0):
                    d[i, j] = s[j, i]


@kernel(parallel=True)
def pack_weights(
    w: np.ndarray,
    wp: np.ndarray,
    G: int,
    Cin_g: int,
    Cout_g: int,
    dest: np.ndarray,
    row: int,
    full: bool,
    out_is_target: bool,
) -> None:
    """Weight ``(G·Cin_g, Cout_g, *K)`` → packed ``(G, phases, Ct, slots, Cs)``.

    ``out_is_target``: the forward's gather (targets are output channels, sources input
    channels); otherwise grad_input's (the other way round). Tap ``k`` of target channel
    ``ct`` and source channel ``cs`` goes to ``dest[k]`` (unsigned) past that channel
    pair's base (``_geometry.pack_offsets``; ``row = slots·Cs``). When not ``full`` (some
    phase has fewer taps than another) the unused slots are zeroed first, though the
    gathers never read them.
    """
    Ct = Cout_g if out_is_target else Cin_g
    Cs = Cin_g if out_is_target else Cout_g
    ktot = dest.size
    per_group = wp.size // G
    if not full:
        wp[:] = 0
    nblk = (Ct + PACK_TILE - 1) // PACK_TILE
    for item in prange(G * nblk):
        gi = item // nblk
        t0 = (item % nblk) * PACK_TILE
        t1 = min(Ct, t0 + PACK_TILE)
        # Tiles of PACK_TILE target × source channels: for one target channel, the tile
        # writes one cache line per tap (PACK_TILE consecutive source channels) and reads
        # each source channel's taps whole, so every line is used whole in L1.
        for s0 in range(0, Cs, PACK_TILE):
            for ct in range(t0, t1):
                for cs in range(s0, min(Cs, s0 + PACK_TILE)):
                    ci = cs if out_is_target else ct
                    co = ct if out_is_target else cs
                    base = ((gi * Cin_g + ci) * Cout_g + co) * ktot
                    src = w[base : base + ktot]
                    dst = wp[gi * per_group + ct * row + cs :]
                    for k in range(ktot):
                        dst[dest[k]] = src[k]


@kernel(parallel=True)
def to_batch_inner(x: np.ndarray, out: np.ndarray, N: int, C: int, I: Dims, sc: int) -> None:
    """``(N, C, Id, Ih, Iw)`` → ``(C, Id, Ih, Iw, N)``, channels ``sc`` apart (at least
    ``Id·Ih·Iw·N``: a little more keeps the rows of neighbouring channels off the same
    cache sets)."""
    Id, Ih, Iw = I
    rows = Id * Ih
    for item in prange(C * rows):
        c = item // rows
        r = item % rows
        start = c * sc + r * Iw * N
        blk = out[start : start + Iw * N].reshape(Iw, N)
        for n in range(N):
            src = x[((n * C + c) * rows + r) * Iw :][:Iw]
            for i in range(Iw):
                blk[i, n] = src[i]


@kernel(parallel=True)
def from_batch_inner(xb: np.ndarray, out: np.ndarray, N: int, C: int, I: Dims) -> None:
    """Inverse of :func:`to_batch_inner` with ``sc = Id·Ih·Iw·N``."""
    Id, Ih, Iw = I
    rows = Id * Ih
    for item in prange(C * rows):
        c = item // rows
        r = item % rows
        body = xb[item * Iw * N : (item + 1) * Iw * N].reshape(Iw, N)
        for n in range(N):
            start = ((n * C + c) * rows + r) * Iw
            dst = out[start : start + Iw]
            for i in range(Iw):
                dst[i] = body[i, n]


@kernel(parallel=True)
def to_tap_planes(
    gy: np.ndarray,
    out: np.ndarray,
    N: int,
    C: int,
    O: Dims,
    S: Dims,
    Q: Dims,
    Iw: int,
    sp: int,
    tab_w: np.ndarray,
) -> None:
    """``(N, C, Od, Oh, Ow)`` → ``(C, sd, sh, Kw, Qd, Qh, Iw, N)``, batch innermost.

    Along D and H split by phase (entry ``(r, q)`` holds output ``r + s·q``); along W one
    plane per tap ``kw``, already shifted for that tap: column ``i`` holds phase ``r_kw`` entry
    ``q = i + c_kw`` (``tab_w``: ``PhaseAxis.table``), zero where ``q`` is no output. So
    each tap pairs input column ``i`` with its own column ``i``: grad_weight's runs need no
    padding columns. Planes are ``sp`` apart (at least ``Qd·Qh·Iw·N``; see
    :func:`to_batch_inner`). Entries past a phase's last output are zero.
    """
    Od, Oh, Ow = O
    sd, sh, sw = S
    Qd, Qh, _ = Q
    Kw = tab_w.shape[1]
    for item in prange(C * sd * sh * Kw * Qd * Qh):
        qh = item % Qh
        rest = item // Qh
        qd = rest % Qd
        rest //= Qd
        kw = rest % Kw
        rest //= Kw
        rh = rest % sh
        rest //= sh
        rd = rest % sd
        c = rest // sd
        start = (item // (Qd * Qh)) * sp + (item % (Qd * Qh)) * Iw * N
        blk = out[start : start + Iw * N].reshape(Iw, N)
        od = rd + sd * qd
        oh = rh + sh * qh
        lo = tab_w[2, kw]
        hi = tab_w[3, kw]
        if od >= Od or oh >= Oh or lo >= hi:
            blk[:, :] = 0
        else:
            blk[:lo, :] = 0
            blk[hi:, :] = 0
            o0 = tab_w[0, kw] + sw * (lo + tab_w[1, kw])  # the output of column lo
            body = blk[lo:hi, :]
            for n in range(N):
                start = (((n * C + c) * Od + od) * Oh + oh) * Ow + o0
                src = gy[start : start + (hi - lo - 1) * sw + 1 : sw]
                for i in range(hi - lo):
                    body[i, n] = src[i]


@kernel(parallel=True)
def to_padded_channels_last(
    a: np.ndarray, out: np.ndarray, N: int, G: int, Cg: int, O: Dims, E: Dims, P: Dims, sn: int
) -> None:
    """``(N, G·Cg, O)`` → ``(G, N, E, Cg)`` with the image at offset ``P`` inside the
    larger extent ``E`` (each ``(g, n)`` block ``sn`` apart): :func:`to_channels_last`
    with a border, which stays as preparation left it (zeros). Tiles of ``TILE_C``
    channels × ``TILE_P`` pixels of one image row, as there."""
    Od, Oh, Ow = O
    _, Eh, Ew = E
    pd, ph, pw = P
    nblk = (Ow + TILE_P - 1) // TILE_P
    rows = Od * Oh
    for item in prange(G * N * rows * nblk):
        blk = item % nblk
        rest = item // nblk
        r = rest % rows
        gn = rest // rows
        n = gn % N
        gi = gn // N
        od = r // Oh
        oh = r % Oh
        p0 = blk * TILE_P
        p1 = min(Ow, p0 + TILE_P)
        base = ((n * G + gi) * Cg * rows + r) * Ow  # channel 0 of this row in ``a``
        dst0 = gn * sn + (((od + pd) * Eh + oh + ph) * Ew + pw) * Cg
        dst = out[dst0 : dst0 + Ow * Cg].reshape(Ow, Cg)
        for c0 in range(0, Cg, TILE_C):
            c1 = min(Cg, c0 + TILE_C)
            d = dst[p0:p1, c0:c1]
            for j in range(c1 - c0):
                src = a[base + (c0 + j) * rows * Ow + p0 :][: p1 - p0]
                for i in range(p1 - p0):
                    d[i, j] = src[i]


@kernel(parallel=True)
def pack_lanes(
    w: np.ndarray,
    out: np.ndarray,
    G: int,
    Cin_g: int,
    Cout_g: int,
    dest: np.ndarray,
    lanes: int,
    inputs_in_lanes: bool,
) -> None:
    """Weight ``(G·Cin_g, Cout_g, K)`` → rows of ``lanes`` values, one channel per lane,
    for the GEMM tiles: input channels when ``inputs_in_lanes`` (grad_input's tiles), else
    output channels (the forward's). Tap ``k`` of the other channel ``c`` goes to the row
    at ``dest[k] + c·lanes`` in its group's part (``out.size / G``); lanes past the
    channel count, and rows no tap fills, stay as preparation left them (zeros).

    ``PACK_TILE`` lane channels at a time, each tap's run of them written whole: the rows,
    like the weight's channels, are a power of two apart in most layers, and touching them
    a value at a time would make their lines evict each other.
    """
    ktot = dest.size
    per_group = out.size // G
    outer = Cout_g if inputs_in_lanes else Cin_g
    inner = Cin_g if inputs_in_lanes else Cout_g
    for item in prange(G * outer):
        c = item % outer
        gi = item // outer
        for c0 in range(0, inner, PACK_TILE):
            n = min(PACK_TILE, inner - c0)
            block = np.empty((n, ktot), dtype=w.dtype)
            for j in range(n):
                ci = c0 + j if inputs_in_lanes else c
                co = c if inputs_in_lanes else c0 + j
                src = w[((gi * Cin_g + ci) * Cout_g + co) * ktot :][:ktot]
                for k in range(ktot):
                    block[j, k] = src[k]
            for k in range(ktot):
                dst = out[gi * per_group + dest[k] + c * lanes + c0 :][:n]
                for j in range(n):
                    dst[j] = block[j, k]


@kernel(parallel=True)
def to_columns(
    gys: np.ndarray,
    col: np.ndarray,
    N: int,
    G: int,
    Cg: int,
    I: Dims,
    E: Dims,
    K: Dims,
    S: Dims,
    D: Dims,
    sn: int,
) -> None:
    """Bordered channels-last grad_output ``(G, N, E, Cg)`` (``(g, n)`` blocks ``sn``
    apart, the image inside a zero border: ``_grad_operands.ChannelsLastGrad``) →
    columns ``(G, N, I, K, Cg)``: the row of input pixel ``i`` holds the ``Cg`` channels of
    padded pixel ``i·s + k·d`` for every tap ``k`` (the im2col of grad_input's
    convolution). With ``d = 1`` along W a row's taps along W are one contiguous run."""
    Id, Ih, Iw = I
    _, Eh, Ew = E
    Kd, Kh, Kw = K
    sd, sh, sw = S
    dd, dh, dw = D
    R = Kd * Kh * Kw * Cg
    pixels = Id * Ih * Iw
    run = Kw * Cg if dw == 1 else Cg  # values copied at a time
    nrun = 1 if dw == 1 else Kw
    for item in prange(G * N * Id * Ih):
        ih = item % Ih
        i_d = (item // Ih) % Id
        gn = item // (Id * Ih)
        for iw in range(Iw):
            row = col[(gn * pixels + (i_d * Ih + ih) * Iw + iw) * R :][:R]
            for kd in range(Kd):
                for kh in range(Kh):
                    pixel = ((i_d * sd + kd * dd) * Eh + ih * sh + kh * dh) * Ew + iw * sw
                    for r in range(nrun):
                        src = gys[gn * sn + (pixel + r * dw) * Cg :][:run]
                        dst = row[((kd * Kh + kh) * Kw + r) * Cg :][:run]
                        for v in range(run):
                            dst[v] = src[v]
