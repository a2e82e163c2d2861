"""The outer-product (GEMM) micro-kernel of ``numba/tiled``, written in LLVM IR.

The dot-product kernels of ``_tiled_kernels`` keep one accumulator per output element
and must reduce each across the SIMD lanes at the end, which costs as much as the loop
itself when the reduction is a few hundred long. The micro-kernel here is the other
classic form (BLAS's): ``MR × NV`` SIMD registers each hold ``VL`` outputs, and every
step adds one column of ``MR`` broadcast scalars times one row of ``NV·VL`` contiguous
values (``MR·NV`` fused multiply-adds for ``NV`` vector loads and ``MR`` broadcasts), so
nothing is reduced across lanes. numba cannot keep an array of vectors in registers, so
the tile is built here in LLVM IR with ``<VL x float>`` values and ``llvm.fma``; LLVM
maps them to AVX-512 (or to what the CPU has). :func:`tile_typer` makes the typing
function of a numba ``intrinsic``; the kernel modules (``_gemm_kernels``,
``_gemm_forward``) define their intrinsics from it.

numba's on-disk cache is invalidated per source file, and an intrinsic is inlined into
its callers: after editing this file, clear the cached kernels (``__pycache__/*.nb?``
beside the package, or ``NUMBA_CACHE_DIR``), or the old tile stays in them. This file
is plain Python (no jitted code) and changes rarely.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils as _cgutils

from ._geometry import TILE_VECTORS, VECTOR_BYTES

cgutils: Any = _cgutils  # untyped: its helpers build LLVM IR

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


def tile_typer(rows: int, vectors: int = NV) -> Any:
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

    typer.__name__ = typer.__qualname__ = f"tile{rows}x{vectors}"  # numba names the intrinsic so
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
