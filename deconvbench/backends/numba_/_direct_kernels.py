"""The kernels of ``numba/direct``: the definition, loop by loop, in NC(D)HW.

Forward scatter-adds every input pixel times every tap into the output (the definition
``y[o = i·s − p + k·d] += x[i]·w[k]``); a parallel iteration owns one output plane
``(n, c_out)``, so the scatter has one writer per element. grad_input gathers (one
iteration per input plane ``(n, c_in)``) and grad_weight reduces (one iteration per
``(c_in, c_out)`` pair). The taps come as slices (``_geometry.tap_slices``): no bounds
test in any loop, and the innermost loops index array slices from 0, so numba emits no
negative-index test either. Sums run in the dtype's precision, in the definition's order
(grad_bias in float64).

Arrays are flat; shapes are integers and 3-tuples, so each kernel compiles once per dtype.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, prange

Dims = tuple[int, int, int]


@kernel(parallel=True)
def forward(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray,
    y: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    O: Dims,
    K: Dims,
    S: Dims,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    Id, Ih, Iw = I
    Od, Oh, Ow = O
    Kd, Kh, Kw = K
    sd, sh, sw = S
    isz = Id * Ih * Iw
    osz = Od * Oh * Ow
    ktot = Kd * Kh * Kw
    Cin = G * Cin_g
    Cout = G * Cout_g
    for plane in prange(N * Cout):
        n = plane // Cout
        c = plane % Cout
        gi = c // Cout_g
        co = c % Cout_g
        yb = plane * osz
        for j in range(osz):
            y[yb + j] = bias[c]
        for ci in range(Cin_g):
            cin = gi * Cin_g + ci
            xb = (n * Cin + cin) * isz
            wb = (cin * Cout_g + co) * ktot
            for kd in range(Kd):
                d0, dn, od0 = tab_d[kd, 0], tab_d[kd, 1], tab_d[kd, 2]
                for kh in range(Kh):
                    h0, hn, oh0 = tab_h[kh, 0], tab_h[kh, 1], tab_h[kh, 2]
                    for kw in range(Kw):
                        w0, wn, ow0 = tab_w[kw, 0], tab_w[kw, 1], tab_w[kw, 2]
                        wv = w[wb + (kd * Kh + kh) * Kw + kw]
                        for a in range(dn):
                            for b in range(hn):
                                xr = xb + ((d0 + a) * Ih + h0 + b) * Iw + w0
                                yr = yb + ((od0 + a * sd) * Oh + oh0 + b * sh) * Ow + ow0
                                xs = x[xr : xr + wn]
                                ys = y[yr : yr + (wn - 1) * sw + 1 : sw]
                                for j in range(wn):
                                    ys[j] += wv * xs[j]


@kernel(parallel=True)
def grad_input(
    gy: np.ndarray,
    w: np.ndarray,
    gx: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    O: Dims,
    K: Dims,
    S: Dims,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    Id, Ih, Iw = I
    Od, Oh, Ow = O
    Kd, Kh, Kw = K
    sd, sh, sw = S
    isz = Id * Ih * Iw
    osz = Od * Oh * Ow
    ktot = Kd * Kh * Kw
    Cin = G * Cin_g
    Cout = G * Cout_g
    for plane in prange(N * Cin):
        n = plane // Cin
        cin = plane % Cin
        gi = cin // Cin_g
        xb = plane * isz
        for j in range(isz):
            gx[xb + j] = 0
        for co in range(Cout_g):
            yb = (n * Cout + gi * Cout_g + co) * osz
            wb = (cin * Cout_g + co) * ktot
            for kd in range(Kd):
                d0, dn, od0 = tab_d[kd, 0], tab_d[kd, 1], tab_d[kd, 2]
                for kh in range(Kh):
                    h0, hn, oh0 = tab_h[kh, 0], tab_h[kh, 1], tab_h[kh, 2]
                    for kw in range(Kw):
                        w0, wn, ow0 = tab_w[kw, 0], tab_w[kw, 1], tab_w[kw, 2]
                        wv = w[wb + (kd * Kh + kh) * Kw + kw]
                        for a in range(dn):
                            for b in range(hn):
                                xr = xb + ((d0 + a) * Ih + h0 + b) * Iw + w0
                                yr = yb + ((od0 + a * sd) * Oh + oh0 + b * sh) * Ow + ow0
                                xs = gx[xr : xr + wn]
                                ys = gy[yr : yr + (wn - 1) * sw + 1 : sw]
                                for j in range(wn):
                                    xs[j] += wv * ys[j]


@kernel(parallel=True)
def grad_weight(
    gy: np.ndarray,
    x: np.ndarray,
    gw: np.ndarray,
    N: int,
    G: int,
    Cin_g: int,
    Cout_g: int,
    I: Dims,
    O: Dims,
    K: Dims,
    S: Dims,
    tab_d: np.ndarray,
    tab_h: np.ndarray,
    tab_w: np.ndarray,
) -> None:
    Id, Ih, Iw = I
    Od, Oh, Ow = O
    Kd, Kh, Kw = K
    sd, sh, sw = S
    isz = Id * Ih * Iw
    osz = Od * Oh * Ow
    ktot = Kd * Kh * Kw
    Cin = G * Cin_g
    Cout = G * Cout_g
    for pair in prange(Cin * Cout_g):
        cin = pair // Cout_g
        co = pair % Cout_g
        cout = (cin // Cin_g) * Cout_g + co
        for kd in range(Kd):
            d0, dn, od0 = tab_d[kd, 0], tab_d[kd, 1], tab_d[kd, 2]
            for kh in range(Kh):
                h0, hn, oh0 = tab_h[kh, 0], tab_h[kh, 1], tab_h[kh, 2]
                for kw in range(Kw):
                    w0, wn, ow0 = tab_w[kw, 0], tab_w[kw, 1], tab_w[kw, 2]
                    total = gw.dtype.type(0)
                    for n in range(N):
                        xb = (n * Cin + cin) * isz
                        yb = (n * Cout + cout) * osz
                        for a in range(dn):
                            for b in range(hn):
                                xr = xb + ((d0 + a) * Ih + h0 + b) * Iw + w0
                                yr = yb + ((od0 + a * sd) * Oh + oh0 + b * sh) * Ow + ow0
                                xs = x[xr : xr + wn]
                                ys = gy[yr : yr + (wn - 1) * sw + 1 : sw]
                                for j in range(wn):
                                    total += xs[j] * ys[j]
                    gw[pair * ktot + (kd * Kh + kh) * Kw + kw] = total


@kernel(parallel=True)
def channel_sums(gy: np.ndarray, out: np.ndarray, N: int, C: int, P: int) -> None:
    """``out[c] = Σ_{n, p} gy[n, c, p]`` (grad_bias), accumulated in float64."""
    for c in prange(C):
        total = 0.0
        for n in range(N):
            row = gy[(n * C + c) * P : (n * C + c + 1) * P]
            for j in range(P):
                total += row[j]
        out[c] = total
