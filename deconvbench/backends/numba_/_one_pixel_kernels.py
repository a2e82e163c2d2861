"""The GEMM-tile kernels of a one-pixel input's backward (``_one_pixel``), on the
outer-product micro-kernel of ``_tile_ir``.

With one input pixel whose taps are the whole output, each group's gradients are plain
GEMMs of the NC(D)HW arrays, ``J = Cout_g·taps`` long on the output side:
``grad_weight = xᵀ·grad_output`` (Cin_g × J, reduced over the batch) and
``grad_input = grad_output·wᵀ`` (N × Cin_g, reduced over J). The intrinsics are defined
here, beside their callers (an intrinsic is inlined into them, and numba's on-disk cache
is invalidated per source file).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba.extending import intrinsic

from ._geometry import TILE_ROWS, TILE_VECTORS
from ._jit import kernel, prange
from ._tile_ir import tile_typer

tile: Any = intrinsic(tile_typer(TILE_ROWS))
tile8x2: Any = intrinsic(tile_typer(8, 2))
tile8x1: Any = intrinsic(tile_typer(8, 1))

INPUT_ROWS = 8
"""Input channels per grad_input tile: 8 accumulators keep the two FMA pipes busy through
their latency, and more tiles than with 16 share the reduction between the threads."""


@kernel(parallel=True)
def dense_weight_tiles(
    x: np.ndarray, gy: np.ndarray, gw: np.ndarray, N: int, G: int, Cin_g: int, J: int, vectors: int
) -> None:
    """``gw[g, ci, j] = Σ_n x[n, g, ci] · gy[n, g, j]`` by tiles of ``TILE_ROWS`` (8 when
    ``vectors`` is 2) input channels, broadcast from ``x``, × ``vectors·VL`` values of
    ``gy``'s rows; ``J`` must be a whole number of tile rows (every lane is read inside
    ``gy``). One iteration owns one tile of ``gw``: it sums the batch in registers, then
    copies the tile's real rows out."""
    vl = 64 // gw.itemsize
    width = vectors * vl
    rows = TILE_ROWS if vectors == TILE_VECTORS else 8
    nci = (Cin_g + rows - 1) // rows
    njb = J // width
    counts = (1, 1, 1, N)
    v_steps = (0, 0, 0, G * J)
    s_steps = (0, 0, 0, G * Cin_g)
    for item in prange(G * nci * njb):
        jb = item % njb
        rest = item // njb
        ci0 = (rest % nci) * rows
        gi = rest // nci
        mr = min(rows, Cin_g - ci0)
        block = np.zeros(rows * width, dtype=gw.dtype)
        v0 = gi * J + jb * width
        s0 = gi * Cin_g + ci0
        if vectors == TILE_VECTORS:
            tile(gy, v0, v_steps, x, s0, s_steps, 1, mr, counts, block, 0, width)
        else:
            tile8x2(gy, v0, v_steps, x, s0, s_steps, 1, mr, counts, block, 0, width)
        for j in range(mr):
            start = (gi * Cin_g + ci0 + j) * J + jb * width
            gw[start : start + width] = block[j * width : (j + 1) * width]


@kernel(parallel=True)
def dense_input_tiles(
    gyt: np.ndarray, w: np.ndarray, gx: np.ndarray, N: int, G: int, Cin_g: int, J: int, Np: int
) -> None:
    """``gx[n, g, ci] = Σ_j w[g, ci, j] · gy[n, g, j]`` by tiles of :data:`INPUT_ROWS`
    input channels (broadcast from the weight's rows, each read once) × ``VL`` batch
    entries (a vector of ``gyt``: grad_output batch-innermost ``(G·J, Np)``, its lanes
    past ``N`` zero). One iteration owns one tile of ``gx`` and the whole reduction."""
    vl = 64 // gx.itemsize
    nnb = Np // vl
    nci = (Cin_g + INPUT_ROWS - 1) // INPUT_ROWS
    counts = (1, 1, 1, J)
    v_steps = (0, 0, 0, Np)
    s_steps = (0, 0, 0, 1)
    for item in prange(G * nci * nnb):
        nb = item % nnb
        rest = item // nnb
        ci0 = (rest % nci) * INPUT_ROWS
        gi = rest // nci
        mr = min(INPUT_ROWS, Cin_g - ci0)
        block = np.zeros(INPUT_ROWS * vl, dtype=gx.dtype)
        v0 = gi * J * Np + nb * vl
        s0 = (gi * Cin_g + ci0) * J
        tile8x1(gyt, v0, v_steps, w, s0, s_steps, J, mr, counts, block, 0, vl)
        for j in range(mr):
            ci = gi * Cin_g + ci0 + j
            for lane in range(min(vl, N - nb * vl)):
                gx[(nb * vl + lane) * G * Cin_g + ci] = block[j * vl + lane]
