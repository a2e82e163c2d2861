"""The SIMD dot-product kernels of ``numba/tiled``: the gathers and grad_weight.

All arrays are flat (1-D, C order); shapes are passed as integers and 3-tuples, so each
kernel compiles once per dtype whatever the problem's shape or dimensionality. Every
parallel loop (``prange``) gives each output element to exactly one iteration: no
atomics, no races. The layouts they read are made by ``_layout_kernels``.

Micro-kernels: ``dot4x4`` computes the 16 dot products of 4 rows of ``a`` with 4 rows of
``b`` (rows ``a0 + u·sa`` and ``b0 + v·sb``, each ``L`` long) in one pass: per step it
loads 8 values and does 16 multiply-adds, so the loop is bound by the FMA units rather
than by loads, and LLVM vectorises it (with ``reassoc``) into 16 SIMD accumulators. The
narrower kernels serve the edges of a block (fewer than 4 rows left on either side).

Every kernel *adds* into ``acc`` (4×4, row-major: ``acc[4·u + v]``), so a caller sums
several windows before writing. The rows are taken as slices first: indexing a slice
with the loop counter lets LLVM see unit-stride accesses (indexing ``a[a0 + t]``
directly with a signed offset makes numba emit negative-index wrap-around, which turns
the loads into gathers).

They live in this file, beside their callers, on purpose: numba's on-disk cache is
invalidated per source file, so a jitted callee in another file could change without
its callers' cached machine code noticing.
"""

from __future__ import annotations

import numpy as np

from ._jit import FASTMATH, kernel, prange

Dims = tuple[int, int, int]


@kernel(fastmath=FASTMATH)
def dot4x4(
    a: np.ndarray, a0: int, sa: int, b: np.ndarray, b0: int, sb: int, L: int, acc: np.ndarray
) -> None:
    A0 = a[a0 : a0 + L]
    A1 = a[a0 + sa : a0 + sa + L]
    A2 = a[a0 + 2 * sa : a0 + 2 * sa + L]
    A3 = a[a0 + 3 * sa : a0 + 3 * sa + L]
    B0 = b[b0 : b0 + L]
    B1 = b[b0 + sb : b0 + sb + L]
    B2 = b[b0 + 2 * sb : b0 + 2 * sb + L]
    B3 = b[b0 + 3 * sb : b0 + 3 * sb + L]
    z = acc.dtype.type(0)
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = z
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = z
    for t in range(L):
        x0 = A0[t]
        x1 = A1[t]
        x2 = A2[t]
        x3 = A3[t]
        y0 = B0[t]
        y1 = B1[t]
        y2 = B2[t]
        y3 = B3[t]
        c00 += x0 * y0
        c01 += x0 * y1
        c02 += x0 * y2
        c03 += x0 * y3
        c10 += x1 * y0
        c11 += x1 * y1
        c12 += x1 * y2
        c13 += x1 * y3
        c20 += x2 * y0
        c21 += x2 * y1
        c22 += x2 * y2
        c23 += x2 * y3
        c30 += x3 * y0
        c31 += x3 * y1
        c32 += x3 * y2
        c33 += x3 * y3
    acc[0] += c00
    acc[1] += c01
    acc[2] += c02
    acc[3] += c03
    acc[4] += c10
    acc[5] += c11
    acc[6] += c12
    acc[7] += c13
    acc[8] += c20
    acc[9] += c21
    acc[10] += c22
    acc[11] += c23
    acc[12] += c30
    acc[13] += c31
    acc[14] += c32
    acc[15] += c33


@kernel(fastmath=FASTMATH)
def dot4x1(
    a: np.ndarray, a0: int, sa: int, b: np.ndarray, b0: int, L: int, acc: np.ndarray, v: int
) -> None:
    """4 rows of ``a`` with one row of ``b``, into column ``v`` of ``acc``."""
    A0 = a[a0 : a0 + L]
    A1 = a[a0 + sa : a0 + sa + L]
    A2 = a[a0 + 2 * sa : a0 + 2 * sa + L]
    A3 = a[a0 + 3 * sa : a0 + 3 * sa + L]
    B0 = b[b0 : b0 + L]
    z = acc.dtype.type(0)
    c0 = c1 = c2 = c3 = z
    for t in range(L):
        y = B0[t]
        c0 += A0[t] * y
        c1 += A1[t] * y
        c2 += A2[t] * y
        c3 += A3[t] * y
    acc[v] += c0
    acc[4 + v] += c1
    acc[8 + v] += c2
    acc[12 + v] += c3


@kernel(fastmath=FASTMATH)
def dot1x4(
    a: np.ndarray, a0: int, b: np.ndarray, b0: int, sb: int, L: int, acc: np.ndarray, u: int
) -> None:
    """One row of ``a`` with 4 rows of ``b``, into row ``u`` of ``acc``."""
    A0 = a[a0 : a0 + L]
    B0 = b[b0 : b0 + L]
    B1 = b[b0 + sb : b0 + sb + L]
    B2 = b[b0 + 2 * sb : b0 + 2 * sb + L]
    B3 = b[b0 + 3 * sb : b0 + 3 * sb + L]
    z = acc.dtype.type(0)
    c0 = c1 = c2 = c3 = z
    for t in range(L):
        x = A0[t]
        c0 += x * B0[t]
        c1 += x * B1[t]
        c2 += x * B2[t]
        c3 += x * B3[t]
    acc[4 * u] += c0
    acc[4 * u + 1] += c1
    acc[4 * u + 2] += c2
    acc[4 * u + 3] += c3


@kernel(fastmath=FASTMATH)
def dot1x1(a: np.ndarray, a0: int, b: np.ndarray, b0: int, L: int, acc: np.ndarray, i: int) -> None:
    A0 = a[a0 : a0 + L]
    B0 = b[b0 : b0 + L]
    c = acc.dtype.type(0)
    for t in range(L):
        c += A0[t] * B0[t]
    acc[i] += c


@kernel(fastmath=FASTMATH)
def dot4x4_pair(
    a: np.ndarray,
    a0: int,
    a1: int,
    sa: int,
    b: np.ndarray,
    b0: int,
    b1: int,
    sb: int,
    L: int,
    acc: np.ndarray,
) -> None:
    """:func:`dot4x4` over two windows of the same length at once (``a0``/``b0`` and
    ``a1``/``b1``): twice the work per pass, so the 16 horizontal sums at its end and the
    loop's start-up cost half as much per multiply-add."""
    A0 = a[a0 : a0 + L]
    A1 = a[a0 + sa : a0 + sa + L]
    A2 = a[a0 + 2 * sa : a0 + 2 * sa + L]
    A3 = a[a0 + 3 * sa : a0 + 3 * sa + L]
    B0 = b[b0 : b0 + L]
    B1 = b[b0 + sb : b0 + sb + L]
    B2 = b[b0 + 2 * sb : b0 + 2 * sb + L]
    B3 = b[b0 + 3 * sb : b0 + 3 * sb + L]
    E0 = a[a1 : a1 + L]
    E1 = a[a1 + sa : a1 + sa + L]
    E2 = a[a1 + 2 * sa : a1 + 2 * sa + L]
    E3 = a[a1 + 3 * sa : a1 + 3 * sa + L]
    F0 = b[b1 : b1 + L]
    F1 = b[b1 + sb : b1 + sb + L]
    F2 = b[b1 + 2 * sb : b1 + 2 * sb + L]
    F3 = b[b1 + 3 * sb : b1 + 3 * sb + L]
    z = acc.dtype.type(0)
    c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = z
    c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = z
    for t in range(L):
        x0 = A0[t]
        x1 = A1[t]
        x2 = A2[t]
        x3 = A3[t]
        e0 = E0[t]
        e1 = E1[t]
        e2 = E2[t]
        e3 = E3[t]
        y0 = B0[t]
        y1 = B1[t]
        y2 = B2[t]
        y3 = B3[t]
        f0 = F0[t]
        f1 = F1[t]
        f2 = F2[t]
        f3 = F3[t]
        c00 += x0 * y0 + e0 * f0
        c01 += x0 * y1 + e0 * f1
        c02 += x0 * y2 + e0 * f2
        c03 += x0 * y3 + e0 * f3
        c10 += x1 * y0 + e1 * f0
        c11 += x1 * y1 + e1 * f1
        c12 += x1 * y2 + e1 * f2
        c13 += x1 * y3 + e1 * f3
        c20 += x2 * y0 + e2 * f0
        c21 += x2 * y1 + e2 * f1
        c22 += x2 * y2 + e2 * f2
        c23 += x2 * y3 + e2 * f3
        c30 += x3 * y0 + e3 * f0
        c31 += x3 * y1 + e3 * f1
        c32 += x3 * y2 + e3 * f2
        c33 += x3 * y3 + e3 * f3
    acc[0] += c00
    acc[1] += c01
    acc[2] += c02
    acc[3] += c03
    acc[4] += c10
    acc[5] += c11
    acc[6] += c12
    acc[7] += c13
    acc[8] += c20
    acc[9] += c21
    acc[10] += c22
    acc[11] += c23
    acc[12] += c30
    acc[13] += c31
    acc[14] += c32
    acc[15] += c33


@kernel(fastmath=FASTMATH)
def dot_block(
    a: np.ndarray,
    a0: int,
    sa: int,
    na: int,
    b: np.ndarray,
    b0: int,
    sb: int,
    nb: int,
    L: int,
    acc: np.ndarray,
) -> None:
    """``acc[4·u + v] += a[row u] · b[row v]`` for ``u < na <= 4``, ``v < nb <= 4``.

    Picks the widest kernel the block allows, so full blocks run ``dot4x4``.
    """
    if na == 4 and nb == 4:
        dot4x4(a, a0, sa, b, b0, sb, L, acc)
    elif na == 4:
        for v in range(nb):
            dot4x1(a, a0, sa, b, b0 + v * sb, L, acc, v)
    elif nb == 4:
        for u in range(na):
            dot1x4(a, a0 + u * sa, b, b0, sb, L, acc, u)
    else:
        for u in range(na):
            for v in range(nb):
                dot1x1(a, a0 + u * sa, b, b0 + v * sb, L, acc, 4 * u + v)


@kernel(parallel=True, fastmath=FASTMATH)
def gather(
    src: np.ndarray,
    wp: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    N: int,
    G: int,
    Cs: int,
    Ct: int,
    S: Dims,
    T: Dims,
    P: Dims,
    J: Dims,
    E: Dims,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
    cols: int,
    strides: tuple[int, int],
) -> None:
    """``out[n, g·Ct + c, t] = bias[g·Ct + c] + Σ packed weights · source windows``.

    ``src`` is grouped channels-last ``(G, N, S, Cs)``, ``(g, n)`` blocks ``strides[0]``
    apart; packed weights' target channels are ``strides[1]`` apart; ``out`` is NC(D)HW.
    ``tab_*`` are ``GatherAxis.table`` (phase, jlo, jhi, src0 per target); ``E`` the
    source step between taps. One iteration owns ``cols`` columns (a whole row unless rows
    are too few: 1-D problems) of an output row ``(g, 4 batch entries, td, th)``, all channels.

    Blocking: 4 batch entries × 4 target channels per ``dot4x4`` (the batch entries share
    every index but their base, so every block is full whatever the spatial edges do);
    the reduction runs over source channels and, when taps read adjacent sources
    (``E[2] == 1``), over the whole window of taps along W at once; two rows of taps go
    through one :func:`dot4x4_pair` pass. Loops go phase → channel block → columns of that
    phase, so a block's packed weights stay in L1/L2 while they are reused across the row.
    """
    _, Sh, Sw = S
    Td, Th, Tw = T
    Pd, Ph, Pw = P
    _, Jh, Jw = J
    ed, eh, ew = E
    nb = (N + 3) // 4
    tsp = Td * Th * Tw
    sn, row = strides  # source stride between batch entries, weights' between targets
    nw = (Tw + cols - 1) // cols
    for item in prange(G * nb * Td * Th * nw):
        w0 = (item % nw) * cols
        w1 = min(Tw, w0 + cols)
        rest = item // nw
        th = rest % Th
        rest //= Th
        td = rest % Td
        rest //= Td
        b = rest % nb
        gi = rest // nb
        n0 = 4 * b
        na = min(4, N - n0)
        nb0 = (gi * N + n0) * sn
        pd = tab_d[0, td]
        dlo = tab_d[1, td]
        dhi = tab_d[2, td]
        sd0 = tab_d[3, td]
        ph = tab_h[0, th]
        hlo = tab_h[1, th]
        hhi = tab_h[2, th]
        sh0 = tab_h[3, th]
        acc = np.zeros(16, dtype=out.dtype)
        for pw in range(Pw):
            for c0 in range(0, Ct, 4):
                nc = min(4, Ct - c0)
                wbase = (((gi * Pd + pd) * Ph + ph) * Pw + pw) * Ct * row + c0 * row
                for tw in range(w0 + (pw - w0) % Pw, w1, Pw):
                    wlo = tab_w[1, tw]
                    whi = tab_w[2, tw]
                    sw0 = tab_w[3, tw]
                    acc[:] = 0
                    if dlo < dhi and hlo < hhi and wlo < whi:
                        if ew == 1:
                            nseg = 1
                            L = (whi - wlo) * Cs
                        else:
                            nseg = whi - wlo
                            L = Cs
                        full = na == 4 and nc == 4 and nseg == 1
                        for jd in range(dlo, dhi):
                            drow = (sd0 + (jd - dlo) * ed) * Sh + sh0
                            jh = hlo
                            while full and jh + 1 < hhi:  # two rows of taps per pass
                                a0 = nb0 + ((drow + (jh - hlo) * eh) * Sw + sw0) * Cs
                                b0 = wbase + ((jd * Jh + jh) * Jw + wlo) * Cs
                                a1 = a0 + eh * Sw * Cs
                                b1 = b0 + Jw * Cs
                                dot4x4_pair(src, a0, a1, sn, wp, b0, b1, row, L, acc)
                                jh += 2
                            for j in range(jh, hhi):
                                srow = (drow + (j - hlo) * eh) * Sw + sw0
                                wtap = wbase + ((jd * Jh + j) * Jw + wlo) * Cs
                                for seg in range(nseg):
                                    a0 = nb0 + (srow + seg * ew) * Cs
                                    dot_block(src, a0, sn, na, wp, wtap + seg * Cs, row, nc, L, acc)
                    for u in range(na):
                        for v in range(nc):
                            c = gi * Ct + c0 + v
                            o = ((n0 + u) * G * Ct + c) * tsp + (td * Th + th) * Tw + tw
                            out[o] = acc[4 * u + v] + bias[c]


@kernel(parallel=True, fastmath=FASTMATH)
def grad_weight(
    xb: np.ndarray,
    gq: np.ndarray,
    gw: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    K: Dims,
    S: Dims,
    Q: Dims,
    tap_block: bool,
    strides: tuple[int, int],
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    """``gw[ci, co, k] = Σ_{n, i} x[n, ci, i] · gy[n, co, i·s − p + k·d]``.

    ``xb`` is :func:`to_batch_inner`'s layout without padding columns ``(Cin, Id, Ih, Iw,
    N)``, ``gq`` :func:`to_tap_planes`' (one plane per tap along W, shifted so that input
    column ``i`` meets its own column ``i``); ``tab_*`` are ``PhaseAxis.table`` (r, c, lo,
    hi per tap). For tap ``k`` the pairs of a block of rows ``h`` are then one contiguous
    run of both operands, ``rows·Iw·N`` long, so each dot product is one long SIMD
    reduction per depth row.

    Blocking: 4 input channels × 4 "b rows" per :func:`dot_block`, the b rows being 4
    output channels of one tap, or (``tap_block``: few output channels) 4 taps along W of
    one output channel, whose planes are adjacent. One iteration owns a block of ``gw``
    (4 ci × 4 co, or 4 ci × 1 co), every tap of it: its operands stay in cache across the
    taps.
    """
    _, Ih, Iw = I
    Kd, Kh, Kw = K
    sd, sh, _ = S
    _, Qh, _ = Q
    ktot = Kd * Kh * Kw
    nci = (Cin_g + 3) // 4
    co_step = 1 if tap_block else 4
    nco = (Cout_g + co_step - 1) // co_step
    run = Iw * N  # one row of either operand
    sx, sp = strides  # xb's between channels, gq's between tap planes
    sg = sd * sh * Kw * sp  # gq stride between channels
    kw_step = 4 if tap_block else 1
    sb = sp if tap_block else sg  # stride between the b rows of a block
    ob = 1 if tap_block else ktot  # stride between their results in gw
    for item in prange(G * nci * nco):
        cb = item % nco
        rest = item // nco
        ib = rest % nci
        gi = rest // nci
        ci0 = 4 * ib
        co0 = co_step * cb
        na = min(4, Cin_g - ci0)
        acc = np.zeros(16, dtype=gw.dtype)
        for kd in range(Kd):
            for kh in range(Kh):
                hlo = tab_h[2, kh]
                hhi = tab_h[3, kh]
                L = (hhi - hlo) * run
                plane = ((gi * Cout_g + co0) * sd + tab_d[0, kd]) * sh + tab_h[0, kh]
                for kw0 in range(0, Kw, kw_step):
                    nb = min(4, Kw - kw0) if tap_block else min(4, Cout_g - co0)
                    acc[:] = 0
                    if hlo < hhi:
                        for i_d in range(tab_d[2, kd], tab_d[3, kd]):
                            a0 = (gi * Cin_g + ci0) * sx + (i_d * Ih + hlo) * run
                            b0 = (i_d + tab_d[1, kd]) * Qh + hlo + tab_h[1, kh]
                            b0 = (plane * Kw + kw0) * sp + b0 * run
                            dot_block(xb, a0, sx, na, gq, b0, sb, nb, L, acc)
                    tap = (kd * Kh + kh) * Kw + kw0
                    for u in range(na):
                        o = ((gi * Cin_g + ci0 + u) * Cout_g + co0) * ktot + tap
                        for v in range(nb):
                            gw[o + v * ob] = acc[4 * u + v]
