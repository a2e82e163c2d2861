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
output row by :func:`dense_rows`): with the four source runs of a pass it stays in L1
(20 KiB in float32)."""


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
    weights) or 4 output channels of one tap. One iteration owns one target plane
    ``(ci, id)`` and walks it in L1-sized chunks.
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
                    # the tap's rows in plane coordinates, clipped to this chunk
                    lo = max(c0, tab_h[2, kh] * run)
                    hi = min(c1, tab_h[3, kh] * run)
                    if lo >= hi:
                        continue
                    dst = tgt[lo:hi]
                    row = ((i_d + tab_d[1, kd]) * Qh + tab_h[1, kh]) * run + lo
                    for co0 in range(0, Cout_g, co_step):
                        p = ((gi * Cout_g + co0) * sd + tab_d[0, kd]) * sh + tab_h[0, kh]
                        for kw0 in range(0, Kw, kw_step):
                            ns = min(4, Kw - kw0) if tap_block else min(4, Cout_g - co0)
                            w0 = (c * Cout_g + co0) * ktot + (kd * Kh + kh) * Kw + kw0
                            axpy_block(dst, gq, (p * Kw + kw0) * sp + row, ss, ns, w, w0, sw)


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
