"""Outer-product (GEMM) kernels of ``numba/tiled``: an explicit-SIMD micro-kernel.

The dot-product kernels of ``_tiled_kernels`` keep one accumulator per output element
and must reduce each across the SIMD lanes at the end, which costs as much as the loop
itself when the reduction is a few hundred long. The micro-kernel here is the other
classic form (BLAS's): ``MR × NV`` SIMD registers each hold ``VL`` outputs, and every
step adds one column of ``MR`` broadcast scalars times one row of ``NV·VL`` contiguous
values (``MR·NV`` fused multiply-adds for ``NV`` vector loads and ``MR`` broadcasts), so
nothing is reduced across lanes. numba cannot keep an array of vectors in registers, so
the kernel is written in LLVM IR (:func:`tile`, a numba ``intrinsic``) with
``<VL x float>`` values and ``llvm.fma``; LLVM maps them to AVX-512 (or to what the CPU
has). It is inlined into its caller, which is why its callers live in this file: numba's
on-disk cache is invalidated per source file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic

from ._geometry import TILE_ROWS, TILE_VECTORS, VECTOR_BYTES
from ._jit import kernel, prange

cgutils: Any = _cgutils  # untyped: its helpers build LLVM IR

Dims = tuple[int, int, int]

MR = TILE_ROWS
NV = TILE_VECTORS


def lanes(itemsize: int) -> int:
    """Values per SIMD vector of a dtype: ``VL``."""
    return VECTOR_BYTES // itemsize


def _tile_codegen(rows: int, vectors: int) -> Any:
    """The IR builder of a tile of ``rows`` broadcast rows × ``vectors`` SIMD vectors
    (see :func:`_signature`)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return _build_tile(rows, vectors, context, builder, signature, args)

    return codegen


def _build_tile(MR: int, NV: int, context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """The IR of one tile call: ``MR`` rows × ``NV`` vectors of accumulators."""
    v_arr, v0, v_steps, s_arr, s0, s_steps, sj, mr, counts, c_arr, c0, cj = args
    v_type = signature.args[0]

    def element(values: Any, position: int, level: int) -> Any:
        """An index tuple's element as ``intp`` (a tuple may mix literal and run-time
        integers, so each element is cast on its own)."""
        item_type = signature.args[position][level]
        return context.cast(builder, builder.extract_value(values, level), item_type, types.intp)

    elt = context.get_data_type(v_type.dtype)
    vl = lanes(context.get_abi_sizeof(elt))
    vec = ir.VectorType(elt, vl)
    intp = context.get_value_type(types.intp)
    i32 = ir.IntType(32)
    fma_name = f"llvm.fma.v{vl}{'f32' if vl == 16 else 'f64'}"
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3), fma_name)
    vp = context.make_array(signature.args[0])(context, builder, v_arr).data
    sp = context.make_array(signature.args[3])(context, builder, s_arr).data
    cp = context.make_array(signature.args[9])(context, builder, c_arr).data
    undef = ir.Constant(vec, ir.Undefined)
    splat = ir.Constant(ir.VectorType(i32, vl), [0] * vl)

    def const(value: int) -> Any:
        return ir.Constant(intp, value)

    def load_vector(base: Any, offset: Any) -> Any:
        ptr = builder.bitcast(builder.gep(base, [offset]), vec.as_pointer())
        return builder.load(ptr, align=context.get_abi_sizeof(elt))

    # rows past ``mr`` repeat the last real one: their sums are computed and never read
    last = builder.sub(mr, const(1))
    rows = [
        builder.mul(sj, builder.select(builder.icmp_signed("<", const(j), mr), const(j), last))
        for j in range(MR)
    ]
    zero = ir.Constant(vec, [0.0] * vl)
    acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(NV)] for _ in range(MR)]
    n_loops = len(signature.args[8])
    # nested loops over the 4 levels, each with its own V and S step (mem2reg keeps the
    # accumulators in registers: they are allocas with no other use)
    v_base, s_base = v0, s0
    stack = []
    for level in range(n_loops):
        loop = cgutils.for_range(builder, element(counts, 8, level))
        index = loop.__enter__().index
        stack.append(loop)
        v_base = builder.add(v_base, builder.mul(index, element(v_steps, 2, level)))
        s_base = builder.add(s_base, builder.mul(index, element(s_steps, 5, level)))
    vectors = [load_vector(vp, builder.add(v_base, const(q * vl))) for q in range(NV)]
    for j in range(MR):
        scalar = builder.load(builder.gep(sp, [builder.add(s_base, rows[j])]))
        broadcast = builder.shuffle_vector(
            builder.insert_element(undef, scalar, ir.Constant(i32, 0)), undef, splat
        )
        for q in range(NV):
            builder.store(
                builder.call(fma, [broadcast, vectors[q], builder.load(acc[j][q])]), acc[j][q]
            )
    for loop in reversed(stack):
        loop.__exit__(None, None, None)
    sums = [[builder.load(acc[j][q]) for q in range(NV)] for j in range(MR)]
    for j in range(MR):
        row = builder.add(c0, builder.mul(cj, const(j)))
        for q in range(NV):
            offset = builder.add(row, const(q * vl))
            total = builder.fadd(load_vector(cp, offset), sums[j][q])
            ptr = builder.bitcast(builder.gep(cp, [offset]), vec.as_pointer())
            builder.store(total, ptr, align=context.get_abi_sizeof(elt))
    return context.get_dummy_value()


def _tile_typer(rows: int, vectors: int = NV) -> Any:
    """The typing function of a tile of ``rows`` rows × ``vectors`` vectors (see
    :func:`_signature`)."""

    def typer(
        typingctx: Any,
        v: Any,
        v0: Any,
        v_steps: Any,
        s: Any,
        s0: Any,
        s_steps: Any,
        sj: Any,
        mr: Any,
        counts: Any,
        c: Any,
        c0: Any,
        cj: Any,
    ) -> tuple[Any, Any]:
        return _signature(v, v_steps, s, s_steps, counts, c), _tile_codegen(rows, vectors)

    return typer


def _signature(v: Any, v_steps: Any, s: Any, s_steps: Any, counts: Any, c: Any) -> Any:
    """``c[c0 + j·cj + q·VL + l] += Σ_t s[s0 + j·sj + off_s(t)] · v[v0 + off_v(t) + q·VL + l]``.

    ``t`` runs over a 4-level loop nest (``counts``), each level with its own step in
    ``v`` and ``s`` (``v_steps``, ``s_steps``); rows ``j < MR`` are the broadcast
    streams ``sj`` apart (rows from ``mr`` on repeat row ``mr - 1``); ``c`` is a dense
    ``(MR, NV·VL)`` block, ``cj`` apart. The ``NV·VL`` values read from ``v`` at each
    step must lie inside it (callers pad their buffers).
    """
    index = types.intp
    for values in (v_steps, s_steps, counts):
        if not isinstance(values, types.BaseTuple) or len(values) != 4:
            raise TypeError(f"tile takes 4-tuples of integers, not {values}")
    return types.void(v, index, v_steps, s, index, s_steps, index, index, counts, c, index, index)


tile: Any = intrinsic(_tile_typer(MR))
tile8x3: Any = intrinsic(_tile_typer(8, 3))
"""A tile of 8 rows × 3 vectors (24 accumulators, 48 float32 lanes): full where rows of
48 values would leave a quarter of :func:`tile`'s 64 lanes empty (3 channels × 16 taps)."""
tile4: Any = intrinsic(_tile_typer(4))
"""A tile of 4 rows (16 accumulators): fewer rows left empty where 4 divide the inputs
along W and 6 do not (8, 16, 32), for one more vector load per 4 multiply-adds."""


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
) -> None:
    """``gw[ci, co, k] = Σ_{n, i} x[n, ci, i] · gy[n, co, i·s − p + k·d]`` by :func:`tile`.

    ``gys`` is grad_output grouped channels-last ``(G, N, E, Cout_g)``, the image at offset
    ``P`` inside the extent ``E`` (``_grad_operands.ChannelsLastGrad``: ``(g, n)`` blocks
    ``sn`` apart, padded past its end by a tile row);
    ``x`` is the input as it is, NC(D)HW. A tile is ``MR`` input channels (broadcast from
    ``x``: no re-layout) × ``NV·VL`` output channels (vectors of ``gys``) of one tap; the
    reduction runs over the batch entries of a chunk and the tap's valid inputs
    (``tab_*`` are ``_geometry.PhaseAxis.table``: ``(r, c, lo, hi)`` per tap, output
    ``s·(i + c) + r``). One iteration owns ``MR`` input × ``NV·VL`` output channels, every
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
    width = NV * vl  # output channels per tile
    nci = (Cin_g + MR - 1) // MR
    nco = (Cout_g + width - 1) // width
    pixels = Id * Ih * Iw
    v_steps0 = (sd * Eh * Ew * Cout_g, sh * Ew * Cout_g, sw * Cout_g)
    for item in prange(G * nci * nco):
        cb = item % nco
        rest = item // nco
        gi = rest // nci
        ci0 = MR * (rest % nci)
        co0 = cb * width
        mr = min(MR, Cin_g - ci0)
        block = np.zeros(ktot * MR * width, dtype=gw.dtype)
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
                        tap = (kd * Kh + kh) * Kw + kw
                        tile(gys, v0, v_steps, x, s0, s_steps, pixels, mr, counts,
                             block, tap * MR * width, width)  # fmt: skip
        nc = min(width, Cout_g - co0)
        for j in range(mr):
            base = ((gi * Cin_g + ci0 + j) * Cout_g + co0) * ktot
            for tap in range(ktot):
                src = block[(tap * MR + j) * width : (tap * MR + j) * width + nc]
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
    grad_output). A tile is ``rows`` (4: :data:`tile4`, or 6: :data:`tile`) inputs
    along W (broadcast from ``src``) × ``NV·VL`` input channels (vectors of ``wpk``).
    One iteration owns a band of image rows of ``NV·VL`` input channels: it sums them
    tile after tile into a private block, then writes it into ``gx`` (NC(D)HW) a channel
    at a time.
    """
    Id, Ih, Iw = I
    width = NV * (64 // gx.itemsize)
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
                if rows == 4:
                    tile4(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
                else:
                    tile(wpk, v0, v_steps, src, s0, s_steps, sj, mr, counts, block, c0, width)
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
