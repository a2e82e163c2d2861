"""Layout and index helpers shared by the numpy strategies (not by the reference).

The numpy strategies work in a *grouped, channels-first* layout: activations as
``(groups, C/groups, N, *spatial)`` and weights as ``(groups, Cin/g, Cout/g, *kernel)``, so
that a channel contraction is one batched matmul over the group axis with the batch folded
into the GEMM's long dimension.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

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
