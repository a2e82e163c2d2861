"""Layout and index helpers shared by the numpy strategies (not by the reference).

The numpy strategies work in a *grouped, channels-first* layout: activations as
``(groups, C/groups, N, *spatial)`` and weights as ``(groups, Cin/g, Cout/g, *kernel)``, so
that a channel contraction is one batched matmul over the group axis with the batch folded
into the GEMM's long dimension.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ...problem import Problem

A = NDArray[np.floating]


def to_grouped(x: A, groups: int) -> A:
    """``(N, C, *S)`` → contiguous ``(g, C/g, N, *S)``."""
    n, c = x.shape[:2]
    v = x.reshape(n, groups, c // groups, *x.shape[2:])
    return np.ascontiguousarray(np.moveaxis(v, 0, 2))


def from_grouped(y: A) -> A:
    """``(g, C/g, N, *S)`` → contiguous ``(N, C, *S)``."""
    g, cg, n = y.shape[:3]
    return np.ascontiguousarray(np.moveaxis(y, 2, 0)).reshape(n, g * cg, *y.shape[3:])


def weight_grouped(w: A, groups: int) -> A:
    """``(Cin, Cout/g, *K)`` → view ``(g, Cin/g, Cout/g, *K)``."""
    return w.reshape(groups, w.shape[0] // groups, *w.shape[1:])


def weight_ungrouped(wg: A) -> A:
    """Inverse of :func:`weight_grouped`."""
    return wg.reshape(wg.shape[0] * wg.shape[1], *wg.shape[2:])


def taps(problem: Problem) -> Iterator[tuple[int, ...]]:
    """Every kernel tap index, row-major."""
    return itertools.product(*(range(k) for k in problem.kernel))


def tap_slices(
    problem: Problem, tap: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Input and output slices a tap connects: o = i·s − p + k·d kept inside [0, O).

    Returns None when the tap reaches no output position (heavy padding or cropping).
    """
    in_slices, out_slices = [], []
    for size_in, size_out, s, p, d, k in zip(
        problem.input,
        problem.output,
        problem.stride,
        problem.padding,
        problem.dilation,
        tap,
        strict=True,
    ):
        shift = k * d - p  # o = i*s + shift
        first = (-shift + s - 1) // s if shift < 0 else 0  # smallest i with o >= 0
        last = min(size_in - 1, (size_out - 1 - shift) // s)  # largest i with o < O
        if last < first:
            return None
        o0 = first * s + shift
        count = last - first + 1
        in_slices.append(slice(first, last + 1))
        out_slices.append(slice(o0, o0 + (count - 1) * s + 1, s))
    return tuple(in_slices), tuple(out_slices)


def add_bias(y: A, bias: A | None) -> A:
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def bias_grad(problem: Problem, grad_output: A) -> A | None:
    if not problem.bias:
        return None
    total: A = grad_output.sum(axis=(0, *range(2, grad_output.ndim)))
    return total


@dataclass(frozen=True)
class Phase:
    """One output phase of one spatial dimension (the subpixel / polyphase decomposition).

    The outputs ``o`` with ``(o + p) mod s == rho`` are ``o = m·s + rho − p``. Tap k feeds
    them iff ``k·d ≡ rho (mod s)``; those taps are ``k = k0 + j·kstep`` (``j < taps``) with
    ``kstep = s / gcd(s, d)``, and tap k links output m to input ``i = m − t_k`` where
    ``t_k = (k·d − rho) / s = t0 + j·tstep``, ``tstep = d / gcd(s, d)``. So the phase is a
    dense stride-1 correlation of the *undilated* input with a sub-kernel of dilation tstep.
    Its outputs are ``m ∈ [m_lo, m_lo + count)`` (``count`` may be 0 when O < s).
    """

    rho: int
    k0: int
    taps: int
    kstep: int
    t0: int
    tstep: int
    m_lo: int
    count: int
    stride: int
    padding: int

    @property
    def t_last(self) -> int:
        """Largest input offset t_k of the phase (of tap ``k0 + (taps−1)·kstep``)."""
        return self.t0 + (self.taps - 1) * self.tstep

    @property
    def kernel_slice(self) -> slice:
        """The phase's taps as a slice of the kernel axis, in increasing k."""
        return slice(self.k0, self.k0 + (self.taps - 1) * self.kstep + 1, self.kstep)

    @property
    def out_slice(self) -> slice:
        """The phase's output positions as a strided slice of the output axis."""
        start = self.m_lo * self.stride + self.rho - self.padding
        return slice(start, start + (self.count - 1) * self.stride + 1, self.stride)


def phases_1d(size_out: int, kernel: int, stride: int, padding: int, dilation: int) -> list[Phase]:
    """The ``stride`` phases of one spatial dimension (see :class:`Phase`)."""
    kstep = stride // math.gcd(stride, dilation)
    tstep = dilation // math.gcd(stride, dilation)
    result = []
    for rho in range(stride):
        first = [k for k in range(min(kernel, kstep)) if (k * dilation) % stride == rho]
        k0 = first[0] if first else 0
        ntaps = len(range(k0, kernel, kstep)) if first else 0
        t0 = (k0 * dilation - rho) // stride
        m_lo = -((rho - padding) // stride)  # ceil((p − rho) / s)
        m_hi = (size_out - 1 + padding - rho) // stride
        count = max(0, m_hi - m_lo + 1)
        result.append(Phase(rho, k0, ntaps, kstep, t0, tstep, m_lo, count, stride, padding))
    return result


def phases(problem: Problem) -> list[list[Phase]]:
    """Per spatial dimension, its phases (combine them with ``itertools.product``)."""
    return [
        phases_1d(o, k, s, p, d)
        for o, k, s, p, d in zip(
            problem.output,
            problem.kernel,
            problem.stride,
            problem.padding,
            problem.dilation,
            strict=True,
        )
    ]


def phase_tap_slices(ph: Phase, j: int, size_in: int) -> tuple[slice, slice] | None:
    """For tap ``k0 + j·kstep`` of a phase: the input slice it reads and the slice of the
    phase's outputs (``m − m_lo``) it feeds, or None when it feeds none of them."""
    t = ph.t0 + j * ph.tstep
    lo = max(0, ph.m_lo - t)
    hi = min(size_in - 1, ph.m_lo + ph.count - 1 - t)
    if hi < lo:
        return None
    return slice(lo, hi + 1), slice(lo + t - ph.m_lo, hi + t - ph.m_lo + 1)
