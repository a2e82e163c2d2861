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
"""Elements of a target plane accumulated at a time by :func:`grad_input_axpy`: with the
four source runs of a pass it stays in L1 (20 KiB in float32)."""


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


@kernel(parallel=True, fastmath=FASTMATH)
def grad_input_axpy(
    gp: np.ndarray,
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
    Gw: int,
    A: int,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    """grad_input for few output channels: ``gx[ci] += w[ci, co, k] · gy[co] shifted by k``.

    The gather's reduction runs over output channels × taps along W; with a handful of
    output channels it is too short for SIMD dot products. Here the vectors run over
    space and batch instead: on :func:`grad_weight`'s grid, tap ``k`` adds a shifted,
    contiguous run of the phase-split grad_output ``gp`` to a contiguous run of the
    batch-innermost target ``gxb`` ``(Cin, Id, Ih, Gw, N)``, four output channels per
    pass (4 loads, 1 store, 4 FMAs per vector). One iteration owns one target plane
    ``(ci, id)`` and walks it in L1-sized chunks. Grid columns outside the input receive
    sums of padding and are never read back.
    """
    Id, Ih, Iw = I
    Kd, Kh, Kw = K
    sd, sh, sw = S
    Qd, Qh, _ = Q
    ktot = Kd * Kh * Kw
    plane = Ih * Gw * N  # one (ci, id) target plane
    sg = sd * sh * sw * Qd * Qh * Gw * N  # gp stride between channels
    for item in prange(G * Cin_g * Id):
        i_d = item % Id
        c = item // Id  # global input channel
        gi = c // Cin_g
        tgt = gxb[item * plane : (item + 1) * plane]
        for c0 in range(0, plane, CHUNK):
            c1 = min(plane, c0 + CHUNK)
            for t in range(c0, c1):
                tgt[t] = 0
            for kd in range(Kd):
                if i_d < tab_d[2, kd] or i_d >= tab_d[3, kd]:
                    continue
                for kh in range(Kh):
                    hlo = tab_h[2, kh]
                    hhi = tab_h[3, kh]
                    if hlo >= hhi:
                        continue
                    # the tap's run in plane coordinates, clipped to this chunk
                    lo = max(c0, (hlo * Gw + A) * N)
                    hi = min(c1, ((hhi - 1) * Gw + A + Iw) * N)
                    if lo >= hi:
                        continue
                    for kw in range(Kw):
                        tap = (kd * Kh + kh) * Kw + kw
                        p = ((tab_d[0, kd] * sh + tab_h[0, kh]) * sw + tab_w[0, kw]) * Qd
                        p = (((p + i_d + tab_d[1, kd]) * Qh + tab_h[1, kh]) * Gw + tab_w[1, kw]) * N
                        dst = tgt[lo:hi]
                        for co0 in range(0, Cout_g, 4):
                            src0 = (gi * Cout_g + co0) * sg + p + lo  # global channel
                            w0 = (c * Cout_g + co0) * ktot + tap
                            nc = min(4, Cout_g - co0)
                            axpy_block(dst, gp, src0, sg, nc, w, w0, ktot)


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
