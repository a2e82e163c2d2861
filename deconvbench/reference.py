"""The float64 reference every strategy is checked against, and the tolerance rule.

Written independently of every strategy, from the definition and nothing else:

    y[n, g·Cout_g + co, o] += x[n, g·Cin_g + ci, i] · w[g·Cin_g + ci, co, k]
    for every input position i and kernel tap k, where o = i·stride − padding + k·dilation,
    and only where 0 <= o < output.

It loops over kernel taps in Python; for each tap it computes the output index of every input
position explicitly and scatter-adds with ``np.add.at``, which is slow but plainly right. The
channel contraction of a tap is an ``einsum`` in float64.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .problem import Problem

F64 = NDArray[np.float64]

UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}
"""Half the distance from 1.0 to the next representable number, per dtype."""

TOLERANCE_FACTOR = 16.0


def tolerance(dtype: str, reduction_length: int) -> float:
    """The largest normwise relative error accepted for a result of this dtype.

    A sum of L rounded products has a typical error of about u·√L times the size of the
    result (u: unit roundoff); worst-case bounds grow like u·L but are never approached by
    BLAS, FFT or cuDNN on random data. We accept ``16·u·(√L + 4)`` relative to the largest
    magnitude of the reference result: the factor 16 covers blocked summation orders, FFT
    round trips (error ~ u·log n) and the final rounding to the output dtype, and the +4
    keeps short sums from demanding better than a few ulps. Inputs are rounded to the dtype
    before the reference sees them, so input rounding is not part of the error.
    """
    return TOLERANCE_FACTOR * UNIT_ROUNDOFF[dtype] * (math.sqrt(reduction_length) + 4.0)


def magnitude_floor(a_max: float, b_max: float, reduction_length: int) -> float:
    """Typical size of a sum of L products a·b with |a| <= a_max, |b| <= b_max and random signs.

    A random walk of L such terms reaches about √L·a_max·b_max/3 (the 1/3 is the mean square
    of a uniform [-1, 1] draw); partial sums of any order have that size, so rounding errors
    do too, however much the final sum cancels.
    """
    return math.sqrt(reduction_length) * a_max * b_max / 3.0


class Check(NamedTuple):
    """The outcome of comparing one result tensor with the reference."""

    name: str
    max_abs_err: float
    max_rel_err: float  # normwise: max |got - ref| / max |ref|
    tolerance: float
    ok: bool
    message: str


def compare(
    name: str,
    got: object,
    ref: F64 | None,
    dtype: str,
    reduction_length: int,
    floor: float = 0.0,
) -> Check:
    """Compare a strategy's result with the reference under the tolerance rule.

    Errors are relative to ``max(max|ref|, floor)``. The floor is the size of the partial
    sums (see :func:`magnitude_floor`): when a sum cancels (grad_bias of random data, heavy
    cropping), the rounding error of any summation order is set by its partial sums, not by
    its small final value. With no floor and an all-zero reference, 1.0 (the largest
    product of inputs from [-1, 1]) is used.
    """
    tol = tolerance(dtype, reduction_length)
    if ref is None:
        ok = got is None
        msg = "" if ok else f"{name}: expected None (no bias), got an array"
        return Check(name, 0.0, 0.0, tol, ok, msg)
    if got is None:
        return Check(name, math.inf, math.inf, tol, False, f"{name}: missing (got None)")
    arr = np.asarray(got)
    if arr.shape != ref.shape:
        return Check(
            name,
            math.inf,
            math.inf,
            tol,
            False,
            f"{name}: shape {arr.shape} differs from the reference's {ref.shape}",
        )
    diff = np.abs(arr.astype(np.float64) - ref)
    if not np.all(np.isfinite(diff)):
        return Check(name, math.inf, math.inf, tol, False, f"{name}: non-finite values")
    max_abs = float(diff.max(initial=0.0))
    scale = max(float(np.abs(ref).max(initial=0.0)), floor) or 1.0
    rel = max_abs / scale
    ok = rel <= tol
    msg = "" if ok else f"{name}: relative error {rel:.3g} exceeds tolerance {tol:.3g}"
    return Check(name, max_abs, rel, tol, ok, msg)


def _tap_positions(problem: Problem, tap: tuple[int, ...]) -> tuple[NDArray[np.int64], ...]:
    """For one kernel tap: per spatial dimension, the output index of every input index."""
    return tuple(
        np.arange(size) * s - p + k * d
        for size, s, p, d, k in zip(
            problem.input, problem.stride, problem.padding, problem.dilation, tap, strict=True
        )
    )


def _valid(
    problem: Problem, tap: tuple[int, ...]
) -> tuple[tuple[NDArray[np.intp], ...], tuple[NDArray[np.int64], ...]]:
    """Input indices (per dim) whose output index lands inside the output, and those outputs."""
    ins, outs = [], []
    for o, size in zip(_tap_positions(problem, tap), problem.output, strict=True):
        keep = (o >= 0) & (o < size)
        ins.append(np.nonzero(keep)[0])
        outs.append(o[keep])
    return tuple(ins), tuple(outs)


def _group_views(problem: Problem) -> tuple[int, int, int]:
    g = problem.groups
    return g, problem.in_channels // g, problem.out_channels // g


def _spatial_letters(ndim: int) -> str:
    return "xyz"[:ndim]


def forward(
    problem: Problem,
    x: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None,
) -> F64:
    """Reference ``conv_transpose`` in float64."""
    g, cin_g, cout_g = _group_views(problem)
    xd = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    y = np.zeros(problem.y_shape, dtype=np.float64)
    sp = _spatial_letters(problem.ndim)
    for tap in itertools.product(*(range(k) for k in problem.kernel)):
        ins, outs = _valid(problem, tap)
        if any(len(i) == 0 for i in ins):
            continue
        in_grid = np.ix_(*ins)
        out_grid = np.ix_(*outs)
        for gi in range(g):
            xs = xd[:, gi * cin_g : (gi + 1) * cin_g][(slice(None), slice(None), *in_grid)]
            ws = w[gi * cin_g : (gi + 1) * cin_g][(slice(None), slice(None), *tap)]
            contrib = np.einsum(f"nc{sp},cd->nd{sp}", xs, ws)
            target = y[:, gi * cout_g : (gi + 1) * cout_g]
            np.add.at(target, (slice(None), slice(None), *out_grid), contrib)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64).reshape((1, -1) + (1,) * problem.ndim)
    return y


def backward(
    problem: Problem,
    grad_output: NDArray[np.floating],
    x: NDArray[np.floating],
    weight: NDArray[np.floating],
    has_bias: bool,
) -> tuple[F64, F64, F64 | None]:
    """Reference gradients ``(grad_input, grad_weight, grad_bias)`` in float64.

    From the definition: each product x[i]·w[k] feeds y[o(i, k)], so
    grad_input[i] collects grad_output[o(i, k)]·w[k] and grad_weight[k] collects
    x[i]·grad_output[o(i, k)], over the same (i, k) pairs the forward uses.
    """
    g, cin_g, cout_g = _group_views(problem)
    gy = np.asarray(grad_output, dtype=np.float64)
    xd = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    gx = np.zeros(problem.x_shape, dtype=np.float64)
    gw = np.zeros(problem.weight_shape, dtype=np.float64)
    sp = _spatial_letters(problem.ndim)
    for tap in itertools.product(*(range(k) for k in problem.kernel)):
        ins, outs = _valid(problem, tap)
        if any(len(i) == 0 for i in ins):
            continue
        in_grid = np.ix_(*ins)
        out_grid = np.ix_(*outs)
        for gi in range(g):
            cin = slice(gi * cin_g, (gi + 1) * cin_g)
            cout = slice(gi * cout_g, (gi + 1) * cout_g)
            gys = gy[:, cout][(slice(None), slice(None), *out_grid)]
            xs = xd[:, cin][(slice(None), slice(None), *in_grid)]
            ws = w[cin][(slice(None), slice(None), *tap)]
            np.add.at(
                gx[:, cin],
                (slice(None), slice(None), *in_grid),
                np.einsum(f"nd{sp},cd->nc{sp}", gys, ws),
            )
            gw[(cin, slice(None), *tap)] += np.einsum(f"nc{sp},nd{sp}->cd", xs, gys)
    gb = gy.sum(axis=(0, *range(2, 2 + problem.ndim))) if has_bias else None
    return gx, gw, gb
