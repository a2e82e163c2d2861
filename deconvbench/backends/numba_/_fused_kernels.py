"""The kernels only ``numba/subpixel-fused`` adds to ``numba/tiled``'s: the pixel shuffle
and the weight gradient's way back from the fused kernel.

Same conventions as ``_layout_kernels`` (flat arrays, shapes as integers and 3-tuples, so
each kernel compiles once per dtype; each parallel iteration writes its own part).
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel, prange

Dims = tuple[int, int, int]


@kernel(parallel=True)
def pixel_shuffle(
    z: np.ndarray,
    y: np.ndarray,
    N: int,
    G: int,
    Cg: int,
    M: Dims,
    S: Dims,
    O: Dims,
    crop: Dims,
    to_output: bool,
) -> None:
    """Depth-to-space (``to_output``) or its inverse, space-to-depth.

    ``z`` is the fused result ``(N, G, sd, sh, sw, Cg, Md, Mh, Mw)`` (channels ordered
    ``(phase, co)``), ``y`` the output ``(N, G·Cg, Od, Oh, Ow)``. Phase ``r`` entry ``m``
    of a dimension is output ``m·s + r − crop``. Depth-to-space writes each output once
    (every output belongs to one phase and one entry) and drops the entries outside the
    output; space-to-depth fills ``z`` whole, zeros where the crop dropped an entry. One
    iteration owns one row of ``z``.
    """
    Md, Mh, Mw = M
    sd, sh, sw = S
    Od, Oh, Ow = O
    cd, ch, cw = crop
    for item in prange(N * G * sd * sh * sw * Cg * Md * Mh):
        zh = item % Mh
        rest = item // Mh
        zd = rest % Md
        rest //= Md
        co = rest % Cg
        rest //= Cg
        rw = rest % sw
        rest //= sw
        rh = rest % sh
        rest //= sh
        rd = rest % sd
        rest //= sd
        gi = rest % G
        n = rest // G
        row = z[item * Mw : (item + 1) * Mw]
        od = zd * sd + rd - cd
        oh = zh * sh + rh - ch
        inside = 0 <= od < Od and 0 <= oh < Oh
        first = max(0, (cw - rw + sw - 1) // sw)  # the first entry with an output >= 0
        last = min(Mw, (Ow - 1 + cw - rw) // sw + 1) if rw - cw < Ow else 0
        if not inside:
            first = last = 0
        if not to_output:
            row[:] = 0
        if first < last:
            base = (((n * G + gi) * Cg + co) * Od + od) * Oh + oh
            out = y[base * Ow : (base + 1) * Ow]
            o0 = first * sw + rw - cw
            if to_output:
                for t in range(last - first):
                    out[o0 + t * sw] = row[first + t]
            else:
                for t in range(last - first):
                    row[first + t] = out[o0 + t * sw]


@kernel(parallel=True)
def unpack_taps(
    gwf: np.ndarray, gw: np.ndarray, C: int, Cg: int, S: int, offset: np.ndarray, back: bool
) -> None:
    """The real weight's taps in the fused kernel's layout: ``gw[c, co, k]`` is
    ``gwf[c, off_k + co·S]``.

    ``gwf`` is ``(C, P·Cg, S)`` (``S`` fused taps per channel pair), ``gw`` the weight
    layout ``(C, Cg, K)``; ``offset[k]`` is real tap ``k``'s phase and slot
    (``_fused_geometry.unpack_offsets``). Reads the fused gradient into the weight's
    (the zero slots' gradients are dropped), or with ``back`` writes a weight into the
    fused layout (its zero slots are left as they are).
    """
    K = offset.size
    per_in = gwf.size // C
    for c in prange(C):
        fused = gwf[c * per_in : (c + 1) * per_in]
        real = gw[c * Cg * K : (c + 1) * Cg * K]
        for co in range(Cg):
            for k in range(K):
                if back:
                    fused[offset[k] + co * S] = real[co * K + k]
                else:
                    real[co * K + k] = fused[offset[k] + co * S]
