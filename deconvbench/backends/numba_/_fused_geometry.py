"""The fused (ESPCN) form of a problem as ``numba/tiled`` geometry, in plain numpy.

``numpy_/_fused.py`` (shared with numpy and torch) defines the fused form: per dimension,
tap ``k`` sits in phase ``rho_k = k·d mod s`` at offset ``t_k = ⌊k·d / s⌋``, the phases'
sub-kernels are padded to ``L`` slots ``D`` apart, and the one correlation computes the
phase outputs ``m = M0 + z``, ``0 <= z < M``, from inputs ``i = m − t``. Written with the
un-flipped slot ``k' = t / D`` that is ``z = i − M0 + k'·D``: the fused correlation *is* a
stride-1 transposed convolution (kernel ``L``, padding ``M0``, dilation ``D``, output ``M``)
with ``P·Cout/g`` output channels per group (P = ∏s), channels ordered ``(phase, co)``.
So ``numba/subpixel-fused`` runs ``numba/tiled``'s kernels on that problem
(:func:`fused_geometry`), and this module says where each real tap sits in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ...problem import Problem
from ..numpy_._fused import FusedAxis, fused_axes
from ._geometry import Dims, Geometry, Ints, forward_axis


def _three(values: list[int], fill: int) -> Dims:
    padded = [fill] * (3 - len(values)) + values
    return (padded[0], padded[1], padded[2])


@dataclass(frozen=True)
class FusedGeometry:
    """The fused problem (``geo``: ``cout_g`` is ``P·Cout/g``) and how it maps back.

    ``cout_g`` is the real problem's ``Cout/g``; ``stride`` its strides (the phase counts);
    ``crop`` where the output starts in the interleaved buffer; ``rho[k]`` and ``slot[k]``
    per real tap (row-major over the 3-D kernel), its phase and its un-flipped slot in the
    fused kernel, both flattened over the dimensions.
    """

    geo: Geometry
    cout_g: int
    stride: Dims
    crop: Dims
    rho: Ints
    slot: Ints

    @property
    def phases(self) -> int:
        return math.prod(self.stride)


def _axes3(problem: Problem) -> tuple[FusedAxis, ...]:
    axes = fused_axes(problem)
    unit = FusedAxis(1, 1, 1, (0,), (0,), 0, 1, (0, 0), 0, 1)  # a unit dimension
    return (unit,) * (3 - len(axes)) + axes


def fused_geometry(problem: Problem) -> FusedGeometry:
    axes = _axes3(problem)
    g = problem.groups
    stride = _three(list(problem.stride), 1)
    geo = Geometry(
        batch=problem.batch,
        groups=g,
        cin_g=problem.in_channels // g,
        cout_g=problem.out_channels // g * math.prod(stride),
        input=_three(list(problem.input), 1),
        output=(axes[0].count, axes[1].count, axes[2].count),
        kernel=(axes[0].slots, axes[1].slots, axes[2].slots),
        stride=(1, 1, 1),
        padding=(axes[0].first, axes[1].first, axes[2].first),
        dilation=(axes[0].dilation, axes[1].dilation, axes[2].dilation),
    )
    rho, slot = [], []
    for kd in range(len(axes[0].rho)):
        for kh in range(len(axes[1].rho)):
            for kw in range(len(axes[2].rho)):
                r = [a.rho[k] for a, k in zip(axes, (kd, kh, kw), strict=True)]
                q = [a.slots - 1 - a.slot[k] for a, k in zip(axes, (kd, kh, kw), strict=True)]
                rho.append((r[0] * stride[1] + r[1]) * stride[2] + r[2])
                slot.append((q[0] * geo.kernel[1] + q[1]) * geo.kernel[2] + q[2])
    return FusedGeometry(
        geo=geo,
        cout_g=problem.out_channels // g,
        stride=stride,
        crop=(axes[0].crop, axes[1].crop, axes[2].crop),
        rho=np.array(rho, dtype=np.int64),
        slot=np.array(slot, dtype=np.int64),
    )


def forward_pack(fg: FusedGeometry) -> tuple[NDArray[np.uint64], int, bool]:
    """``pack_weights``' ``(dest, row, full)`` for the forward gather, from the real weight.

    Packed ``(g, phase, Cout/g, slots, Cin/g)`` is the fused problem's ``(g, P·Cout/g,
    slots, Cin/g)``; a real tap goes to its phase's block of target channels, at the gather
    slot of its fused tap (the forward gather orders a phase's taps by increasing input,
    the reverse of ``k'``).
    """
    axes = [forward_axis(*a) for a in fg.geo.axes()]
    J = [a.taps for a in axes]
    row = math.prod(J) * fg.geo.cin_g
    dest = []
    for rho, k in zip(fg.rho.tolist(), fg.slot.tolist(), strict=True):
        kd, rest = divmod(k, fg.geo.kernel[1] * fg.geo.kernel[2])
        kh, kw = divmod(rest, fg.geo.kernel[2])
        jd, jh, jw = (int(a.slots[t, 1]) for a, t in zip(axes, (kd, kh, kw), strict=True))
        gather_slot = (jd * J[1] + jh) * J[2] + jw
        dest.append(rho * fg.cout_g * row + gather_slot * fg.geo.cin_g)
    return np.array(dest, dtype=np.uint64), row, len(dest) == fg.phases * math.prod(J)


def unpack_offsets(fg: FusedGeometry) -> Ints:
    """Per real tap, its offset in one input channel's fused weight gradient
    ``(P·Cout/g, ∏L)``, for output channel 0 (channel ``co`` adds ``co·∏L``)."""
    slots = math.prod(fg.geo.kernel)
    return np.asarray(fg.rho * fg.cout_g * slots + fg.slot, dtype=np.int64)


def gather_tables(fg: FusedGeometry) -> list[Ints]:
    """The fused problem's forward gather tables."""
    return [np.ascontiguousarray(forward_axis(*a).table) for a in fg.geo.axes()]
