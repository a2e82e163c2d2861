"""The kernels of ``numba/tiled`` that vectorise over space: small-channel grad_input, grad_bias.

Same conventions as ``_tiled_kernels`` (flat arrays, one compile per dtype, one writer per
output element). The micro-kernel sits beside its caller for the same reason: numba's
cache is invalidated per file.
"""

from __future__ import annotations

import numpy as np

from ._jit import FASTMATH, kernel, prange

Dims = tuple[int, int, int]


CHUNK = 1024
"""Elements of a target plane accumulated at a time by :func:`grad_input_axpy` (and of an
output row by :func:`dense_rows`): the four target and four source runs of a pass are
32 KiB in float32, about L1 (512 is no faster on the DCGAN image layer)."""


@kernel(fastmath=FASTMATH)
def axpy_block(
    dst: np.ndarray, src: np.ndarray, s0: int, ss: int, ns: int, w: np.ndarray, w0: int, sw: int
) -> None:
    """``dst += Σ_{v < ns} w[w0 + v·sw] · src[s0 + v·ss : s0 + v·ss + len(dst)]``, ``ns <= 4``.

    The ``ns`` source runs are summed in one pass, so each vector of ``dst`` is loaded and
    stored once per pass rather than once per source (stores are the scarce port).
    """
    n = dst.size
    S0 = src[s0 : s0 + n]
    a = w[w0]
    if ns == 4:
        S1 = src[s0 + ss : s0 + ss + n]
        S2 = src[s0 + 2 * ss : s0 + 2 * ss + n]
        S3 = src[s0 + 3 * ss : s0 + 3 * ss + n]
        b = w[w0 + sw]
        c = w[w0 + 2 * sw]
        d = w[w0 + 3 * sw]
        for t in range(n):
            dst[t] += a * S0[t] + b * S1[t] + c * S2[t] + d * S3[t]
    elif ns == 3:
        S1 = src[s0 + ss : s0 + ss + n]
        S2 = src[s0 + 2 * ss : s0 + 2 * ss + n]
        b = w[w0 + sw]
        c = w[w0 + 2 * sw]
        for t in range(n):
            dst[t] += a * S0[t] + b * S1[t] + c * S2[t]
    elif ns == 2:
        S1 = src[s0 + ss : s0 + ss + n]
        b = w[w0 + sw]
        for t in range(n):
            dst[t] += a * S0[t] + b * S1[t]
    else:
        for t in range(n):
            dst[t] += a * S0[t]


@kernel(fastmath=FASTMATH)
def axpy_block4(
    dst: np.ndarray,
    d0: int,
    sd: int,
    n: int,
    src: np.ndarray,
    s0: int,
    ss: int,
    w: np.ndarray,
    w0: int,
    sw: int,
    su: int,
) -> None:
    """:func:`axpy_block` for 4 targets (``dst[d0 + u·sd :]``, weights ``w0 + u·su``) and
    4 sources at once: each source vector loaded serves 4 targets, so a pass moves a
    quarter of the source data per multiply-add (the sources stream from L2)."""
    D0 = dst[d0 : d0 + n]
    D1 = dst[d0 + sd : d0 + sd + n]
    D2 = dst[d0 + 2 * sd : d0 + 2 * sd + n]
    D3 = dst[d0 + 3 * sd : d0 + 3 * sd + n]
    S0 = src[s0 : s0 + n]
    S1 = src[s0 + ss : s0 + ss + n]
    S2 = src[s0 + 2 * ss : s0 + 2 * ss + n]
    S3 = src[s0 + 3 * ss : s0 + 3 * ss + n]
    a0, a1, a2, a3 = w[w0], w[w0 + sw], w[w0 + 2 * sw], w[w0 + 3 * sw]
    b0, b1, b2, b3 = w[w0 + su], w[w0 + su + sw], w[w0 + su + 2 * sw], w[w0 + su + 3 * sw]
    e = w0 + 2 * su
    c0, c1, c2, c3 = w[e], w[e + sw], w[e + 2 * sw], w[e + 3 * sw]
    e += su
    f0, f1, f2, f3 = w[e], w[e + sw], w[e + 2 * sw], w[e + 3 * sw]
    for t in range(n):
        x0 = S0[t]
        x1 = S1[t]
        x2 = S2[t]
        x3 = S3[t]
        D0[t] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
        D1[t] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
        D2[t] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
        D3[t] += f0 * x0 + f1 * x1 + f2 * x2 + f3 * x3


@kernel(parallel=True, fastmath=FASTMATH)
def grad_input_axpy(
    gq: np.ndarray,
    w: np.ndarray,
    gxb: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    K: Dims,
    S: Dims,
    Q: Dims,
    tap_block: bool,
    sp: int,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    """grad_input for few output channels: ``gx[ci] += w[ci, co, k] · gy[co] shifted by k``.

    The gather's reduction runs over output channels × taps along W; with a handful of
    output channels it is too short for SIMD dot products. Here the vectors run over
    space and batch instead, on grad_weight's per-tap planes ``gq``
    (``_layout_kernels.to_tap_planes``, planes ``sp`` apart): for tap ``k`` a block of
    rows of the batch-innermost target ``gxb`` ``(Cin, Id, Ih, Iw, N)`` meets one
    contiguous run of its plane, so four sources go per pass (4 loads, 1 store, 4 FMAs
    per vector): 4 taps along W of one output channel (``tap_block``, adjacent planes and
    weights) or 4 output channels of one tap, into 4 input channels (``axpy_block4``).
    One iteration owns the target planes ``(4 ci, id)`` and walks them in L1-sized chunks.
    """
    Id, Ih, Iw = I
    Kd, Kh, Kw = K
    sd, sh, _ = S
    _, Qh, _ = Q
    ktot = Kd * Kh * Kw
    run = Iw * N
    plane = Ih * run  # one (ci, id) target plane
    sg = sd * sh * Kw * sp  # gq stride between channels
    co_step = 1 if tap_block else 4
    kw_step = 4 if tap_block else 1
    ss = sp if tap_block else sg  # between the sources of a pass
    sw = 1 if tap_block else ktot  # between their weights
    nci = (Cin_g + 3) // 4
    su = Cout_g * ktot  # weights between input channels
    for item in prange(G * nci * Id):
        i_d = item % Id
        rest = item // Id
        gi = rest // nci
        c = gi * Cin_g + 4 * (rest % nci)  # the block's first global input channel
        nu = min(4, (gi + 1) * Cin_g - c)
        first = (c * Id + i_d) * plane  # its target plane; the next ones Id·plane apart
        for c0 in range(0, plane, CHUNK):
            c1 = min(plane, c0 + CHUNK)
            for u in range(nu):
                tgt = gxb[first + u * Id * plane + c0 : first + u * Id * plane + c1]
                tgt[:] = 0
            for kd in range(Kd):
                if i_d < tab_d[2, kd] or i_d >= tab_d[3, kd]:
                    continue
                for kh in range(Kh):
                    # the tap's rows in plane coordinates, clipped to this chunk
                    lo = max(c0, tab_h[2, kh] * run)
                    hi = min(c1, tab_h[3, kh] * run)
                    if lo >= hi:
                        continue
                    row = ((i_d + tab_d[1, kd]) * Qh + tab_h[1, kh]) * run + lo
                    for co0 in range(0, Cout_g, co_step):
                        p = ((gi * Cout_g + co0) * sd + tab_d[0, kd]) * sh + tab_h[0, kh]
                        for kw0 in range(0, Kw, kw_step):
                            ns = min(4, Kw - kw0) if tap_block else min(4, Cout_g - co0)
                            w0 = (c * Cout_g + co0) * ktot + (kd * Kh + kh) * Kw + kw0
                            s0 = (p * Kw + kw0) * sp + row
                            if nu == 4 and ns == 4:
                                d0, sdu = first + lo, Id * plane
                                axpy_block4(gxb, d0, sdu, hi - lo, gq, s0, ss, w, w0, sw, su)
                                continue
                            for u in range(nu):
                                d0 = first + u * Id * plane
                                dst = gxb[d0 + lo : d0 + hi]
                                axpy_block(dst, gq, s0, ss, ns, w, w0 + u * su, sw)


@kernel(parallel=True, fastmath=FASTMATH)
def channel_sums(gy: np.ndarray, out: np.ndarray, N: int, C: int, P: int) -> None:
    """``out[c] = Σ_{n, p} gy[n, c, p]`` (grad_bias), accumulated in float64."""
    for c in prange(C):
        total = 0.0
        for n in range(N):
            row = gy[(n * C + c) * P : (n * C + c + 1) * P]
            for j in range(P):
                total += row[j]
        out[c] = total


@kernel(parallel=True, fastmath=FASTMATH)
def dense_rows(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    bias: np.ndarray,
    G: int,
    R: int,
    T: int,
    J: int,
    K: int,
    A: Dims,
    B: Dims,
    O: Dims,
) -> None:
    """A grouped GEMM by rows: ``out[g, r, :J] = bias + Σ_t a[g, r, t] · b[g, t, :J]``.

    For the layers whose input is one pixel (a latent vector): there the forward and
    grad_weight are plain GEMMs of the NC(D)HW arrays with no layout change at all.
    Strides as ``(per group, per r, per t)`` for ``a``, ``(per group, per t, 0)`` for
    ``b`` and ``(per group, per r, 0)`` for ``out``; ``bias[g·(J/K) + j // K]`` starts
    every row (zeros: none). Each iteration owns one row's chunk of ``CHUNK`` columns and
    adds 4 rows of ``b`` per pass (:func:`axpy_block`).
    """
    nchunk = (J + CHUNK - 1) // CHUNK
    per_group = J // K
    for item in prange(G * R * nchunk):
        j0 = (item % nchunk) * CHUNK
        j1 = min(J, j0 + CHUNK)
        r = (item // nchunk) % R
        g = item // (nchunk * R)
        o0 = g * O[0] + r * O[1]
        dst = out[o0 + j0 : o0 + j1]
        for j in range(j1 - j0):
            dst[j] = bias[g * per_group + (j0 + j) // K]
        a0 = g * A[0] + r * A[1]
        for t0 in range(0, T, 4):
            s0 = g * B[0] + t0 * B[1] + j0
            axpy_block(dst, b, s0, B[1], min(4, T - t0), a, a0 + t0 * A[2], A[2])
