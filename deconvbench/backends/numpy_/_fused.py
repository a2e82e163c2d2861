"""The geometry of the fused (ESPCN) sub-pixel form, shared by numpy and torch.

Tap ``k`` of a transposed convolution feeds the outputs ``o = m·s + rho − p`` of phase
``rho = k·d mod s`` from input ``i = m − t_k``, ``t_k = ⌊k·d / s⌋`` (see
:class:`._layout.Phase`). Every phase is a correlation of the same input over the same
range of ``m``, so all s phases together are *one* correlation with s·Cout output channels,
once every phase's sub-kernel is padded with zeros to a common window of offsets
``t ∈ [0, t_max]``. The window is sampled every ``D`` (the gcd of every ``t_k``): with
dilation, the taps of a dimension often share a common step (``s = 1`` and dilation d:
D = d, no zero at all), and only the offsets that are multiples of D need a slot.

So per spatial dimension the fused kernel has ``L = t_max / D + 1`` slots per phase, and tap
k sits in phase ``rho_k`` at slot ``q_k = (t_max − t_k) / D`` (counted from the far end, so
the fused kernel is already flipped for a correlation). The fused correlation computes the
phase outputs ``m ∈ [M0, M0 + M)`` with ``M0 = ⌊p / s⌋``; interleaved (depth-to-space) they
cover the output positions ``[M0·s − p, (M0 + M)·s − p)``, which contain ``[0, O)``: the
output is that buffer cropped by ``p mod s`` on the left. It reads the input from
``M0 − t_max`` to ``M0 + M − 1`` (zero padding outside, cropping where negative).

The slots no tap fills are zeros the fused GEMM multiplies anyway: a fraction
``1 − ∏k / ∏(s·L)`` of its products (:func:`wasted_fraction`), 0 when s divides k (d = 1).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from ...problem import Problem
from ..strategy import Array, Prepared, Strategy

Index = tuple[object, ...]
"""An index into an array (slices, ints, index arrays)."""


@dataclass(frozen=True)
class FusedAxis:
    """The fused form along one spatial dimension."""

    stride: int
    slots: int  # L: fused kernel length per phase
    dilation: int  # D: the fused kernel's dilation over the undilated input
    rho: tuple[int, ...]  # per tap k: its phase
    slot: tuple[int, ...]  # per tap k: its slot in the (flipped) fused kernel
    first: int  # M0: the first phase output m computed
    count: int  # M: how many phase outputs each phase computes
    pad: tuple[int, int]  # input zero padding before and after (negative crops)
    crop: int  # the output starts this far into the interleaved buffer
    size_out: int  # O

    def phase_out(self, rho: int) -> tuple[slice, slice] | None:
        """Phase ``rho``'s part of the output: a slice of its ``M`` computed outputs and
        the strided output slice they land in (None when none lands inside ``[0, O)``)."""
        m_first = 1 if rho < self.crop else 0  # buffer position m·s + rho, output − crop
        o_first = m_first * self.stride + rho - self.crop
        count = len(range(o_first, self.size_out, self.stride))
        if count == 0:
            return None
        computed = slice(m_first, m_first + count)
        return computed, slice(o_first, o_first + (count - 1) * self.stride + 1, self.stride)


def fused_axis(
    size_in: int, size_out: int, kernel: int, stride: int, padding: int, dilation: int
) -> FusedAxis:
    offsets = [k * dilation // stride for k in range(kernel)]  # t_k
    step = math.gcd(*offsets) or 1  # t_0 = 0; all zero when k·d < s for every tap
    t_max = offsets[-1]
    first = padding // stride
    count = (size_out - 1 + padding) // stride - first + 1
    return FusedAxis(
        stride=stride,
        slots=t_max // step + 1,
        dilation=step,
        rho=tuple(k * dilation % stride for k in range(kernel)),
        slot=tuple((t_max - t) // step for t in offsets),
        first=first,
        count=count,
        pad=(t_max - first, first + count - size_in),
        crop=padding - first * stride,
        size_out=size_out,
    )


@lru_cache(maxsize=512)
def fused_axes(problem: Problem) -> tuple[FusedAxis, ...]:
    """Per spatial dimension, its fused form."""
    return tuple(fused_axis(*axis) for axis in problem.axes())


def phase_count(problem: Problem) -> int:
    """P = ∏s: the fused convolution has P·Cout output channels."""
    return math.prod(problem.stride)


def fused_macs(problem: Problem) -> int:
    """Multiply-adds of the fused correlation: ``N · P·Cout · Cin/g · ∏L · ∏M``."""
    axes = fused_axes(problem)
    return (
        problem.batch
        * problem.out_channels
        * phase_count(problem)
        * (problem.in_channels // problem.groups)
        * math.prod(a.slots for a in axes)
        * math.prod(a.count for a in axes)
    )


def wasted_fraction(problem: Problem) -> float:
    """The share of the fused GEMM's multiply-adds that meet a zero of the padded phase
    sub-kernels: ``1 − ∏k / ∏(s·L)``. 0 when s divides k (and d = 1); 1 − k/s when s > k
    (phases with no tap are all zeros); with dilation, also the offsets between taps no
    phase uses. (Like ``subpixel``, the fused form also multiplies zero padding of the
    input and outputs the crop drops; those are not counted here.)"""
    axes = fused_axes(problem)
    useful = math.prod(problem.kernel)
    computed = math.prod(a.stride * a.slots for a in axes)
    return 1.0 - useful / computed


def with_waste(problem: Problem, prepared: Prepared) -> Prepared:
    """``prepared`` whose facts (the row's engine note) carry :func:`wasted_fraction`."""
    facts = {**prepared.facts, "wasted_products": round(wasted_fraction(problem), 4)}
    return Prepared(prepared.call, prepared.fetch, prepared.synchronize, facts)


class ReportsWaste(Strategy):
    """Mixed in before a backend's base class: every preparation of a fused strategy says
    what share of its products are wasted (:func:`with_waste`), whatever the backend.

    ``super()`` here is the backend's base class, next in the method resolution order, which
    implements both preparations; mypy sees only :class:`Strategy`'s abstract ones."""

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        prepared = super().prepare_forward(problem, x, weight, bias)  # type: ignore[safe-super]
        return with_waste(problem, prepared)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        prepared = super().prepare_backward(problem, grad_output, x, weight)  # type: ignore[safe-super]
        return with_waste(problem, prepared)


@lru_cache(maxsize=512)
def tap_index(problem: Problem) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """Per spatial dimension, each tap's phase and slot (backends turn them into index
    arrays that broadcast over the kernel's dimensions)."""
    axes = fused_axes(problem)
    return tuple(a.rho for a in axes), tuple(a.slot for a in axes)


def broadcast_shapes(ndim: int) -> list[tuple[int, ...]]:
    """Shape of dimension i's tap index: ``-1`` at position i, 1 elsewhere, so the d
    indices broadcast to the kernel's ``(*K)``."""
    return [tuple(-1 if j == i else 1 for j in range(ndim)) for i in range(ndim)]


def phase_parts(axes: tuple[FusedAxis, ...]) -> list[tuple[Index, Index]]:
    """Per phase that owns outputs: its slice of the fused result ``(…, *s, *M, N)`` and
    its strided output slices."""
    parts: list[tuple[Index, Index]] = []
    for rhos in itertools.product(*(range(a.stride) for a in axes)):
        found = [a.phase_out(r) for a, r in zip(axes, rhos, strict=True)]
        if any(f is None for f in found):
            continue
        computed = tuple(f[0] for f in found if f is not None)
        outs = tuple(f[1] for f in found if f is not None)
        parts.append(((slice(None), slice(None), *rhos, *computed), outs))
    return parts
