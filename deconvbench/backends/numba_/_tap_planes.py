"""x batch-innermost and grad_output in per-tap planes: the operands of ``numba/tiled``'s
grad_weight on dot products and of its small-channel grad_input (``numba/subpixel-fused``
uses them too)."""

from __future__ import annotations

import math

import numpy as np

from ..strategy import Array
from ._geometry import Dims, Geometry, phase_axis


def _dims(values: list[int]) -> tuple[int, int, int]:
    return (values[0], values[1], values[2])


SKEW = 16
"""Elements added to the stride between grad_weight's channels and tap planes: their
rows are otherwise a power of two apart in most layers, and the 8 rows a 4×4 block
streams would then share one set of L1 (and L2) cache lines."""


def _tap_layout(geo: Geometry) -> tuple[int, int, int]:
    """``(x channel stride, tap plane stride, tap-plane elements)``."""
    rows = [phase_axis(*a).rows for a in geo.axes()]
    planes = geo.stride[0] * geo.stride[1] * geo.kernel[2]
    sx = math.prod(geo.input) * geo.batch + SKEW
    sp = rows[0] * rows[1] * geo.input[2] * geo.batch + SKEW
    return sx, sp, geo.groups * geo.cout_g * planes * sp


def tap_planes_scratch(geo: Geometry) -> int:
    """Elements of :class:`TapPlanes`' scratch: x batch-innermost, grad_output in per-tap
    planes."""
    sx, _, gq = _tap_layout(geo)
    return geo.groups * geo.cin_g * sx + gq


class TapPlanes:
    """x batch-innermost and grad_output in per-tap planes (``to_tap_planes``), and the two
    backward steps that read them: grad_weight (``_tiled_kernels.grad_weight``) and the
    small-channel grad_input (``_axpy_kernels.grad_input_axpy``). Scratch is allocated
    here, once; :meth:`fill` lays out both operands inside the timed call."""

    def __init__(self, geo: Geometry, dtype: np.dtype[np.generic]) -> None:
        axes = [phase_axis(*a) for a in geo.axes()]
        self.geo, self.dtype = geo, dtype
        self.tables = [np.ascontiguousarray(a.table) for a in axes]
        self.Q = _dims([a.rows for a in axes])
        self.sx, self.sp, size = _tap_layout(geo)
        self.xb = np.zeros(geo.groups * geo.cin_g * self.sx, dtype=dtype)
        self.gq = np.zeros(size, dtype=dtype)
        # 4 taps along W per block when that leaves fewer blocks partly empty than 4 channels
        kw, cout_g = geo.kernel[2], geo.cout_g
        self.tap_block = -(-kw // 4) * 4 * cout_g < -(-cout_g // 4) * 4 * kw
        self.gxb: Array | None = None

    def _shape(self) -> tuple[int, int, int, int, Dims, Dims, Dims, Dims, bool]:
        geo = self.geo
        return (geo.batch, geo.groups, geo.cin_g, geo.cout_g, geo.input, geo.kernel,
                geo.stride, self.Q, self.tap_block)  # fmt: skip

    def fill(self, xf: Array, gyf: Array) -> None:
        from . import _layout_kernels as lay

        geo = self.geo
        cin, cout, iw = geo.groups * geo.cin_g, geo.groups * geo.cout_g, geo.input[2]
        lay.to_batch_inner(xf, self.xb, geo.batch, cin, geo.input, self.sx)
        lay.to_tap_planes(
            gyf, self.gq, geo.batch, cout, geo.output, geo.stride, self.Q, iw, self.sp,
            self.tables[2],
        )  # fmt: skip

    def grad_weight(self, gw: Array) -> None:
        from . import _tiled_kernels as kern

        kern.grad_weight(self.xb, self.gq, gw, *self._shape(), (self.sx, self.sp), *self.tables)

    def grad_input(self, wf: Array) -> Array:
        from . import _axpy_kernels as axpy
        from . import _layout_kernels as lay

        geo = self.geo
        cin = geo.groups * geo.cin_g
        if self.gxb is None:
            self.gxb = np.empty(cin * math.prod(geo.input) * geo.batch, dtype=self.dtype)
        axpy.grad_input_axpy(self.gq, wf, self.gxb, *self._shape(), self.sp, *self.tables)
        gx = np.empty(cin * math.prod(geo.input) * geo.batch, dtype=self.dtype)
        lay.from_batch_inner(self.gxb, gx, geo.batch, cin, geo.input)
        return gx
