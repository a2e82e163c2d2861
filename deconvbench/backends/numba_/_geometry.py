"""Index arithmetic for the numba kernels, in plain numpy (no numba import).

Every problem is handled as 3-D: a 1-D or 2-D problem gains leading unit dimensions
(size 1, kernel 1, stride 1, no padding), which changes no value and lets one compiled
kernel per dtype serve every dimensionality. Everything here is computed once, in
preparation, so the kernels' inner loops do no division and no bounds test.

Notation per spatial dimension: input size ``I``, output size ``O``, kernel ``K``, stride
``s``, padding ``p``, dilation ``d``. Input ``i`` and tap ``k`` feed output
``o = i·s − p + k·d``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ...problem import Problem

Ints = NDArray[np.int64]
Dims = tuple[int, int, int]


def _three(values: tuple[int, ...], fill: int) -> Dims:
    """Pad a per-dimension tuple at the front to three dimensions."""
    padded = (fill,) * (3 - len(values)) + tuple(values)
    return (padded[0], padded[1], padded[2])


@dataclass(frozen=True)
class Geometry:
    """A problem seen as 3-D, with its channel counts per group."""

    batch: int
    groups: int
    cin_g: int
    cout_g: int
    input: Dims
    output: Dims
    kernel: Dims
    stride: Dims
    padding: Dims
    dilation: Dims

    @classmethod
    def of(cls, problem: Problem) -> Geometry:
        g = problem.groups
        return cls(
            batch=problem.batch,
            groups=g,
            cin_g=problem.in_channels // g,
            cout_g=problem.out_channels // g,
            input=_three(problem.input, 1),
            output=_three(problem.output, 1),
            kernel=_three(problem.kernel, 1),
            stride=_three(problem.stride, 1),
            padding=_three(problem.padding, 0),
            dilation=_three(problem.dilation, 1),
        )

    def axes(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """Per dimension ``(I, O, K, s, p, d)``."""
        return tuple(
            zip(
                self.input,
                self.output,
                self.kernel,
                self.stride,
                self.padding,
                self.dilation,
                strict=True,
            )
        )


# --- direct: the taps as input/output slices ----------------------------------------------


def tap_slices(I: int, O: int, K: int, s: int, p: int, d: int) -> Ints:
    """Per tap ``k``: ``(first input, count, first output)`` of the inputs it sends in range.

    Row ``k`` connects inputs ``first + c`` to outputs ``out + c·s`` for ``c < count``;
    ``count`` is 0 when heavy padding or cropping leaves the tap no output.
    """
    table = np.zeros((K, 3), dtype=np.int64)
    for k in range(K):
        shift = k * d - p  # o = i·s + shift
        first = max(0, -(shift // s))  # smallest i with o >= 0 (ceil(-shift / s))
        last = min(I - 1, (O - 1 - shift) // s)  # largest i with o < O
        if last >= first:
            table[k] = (first, last - first + 1, first * s + shift)
    return table


# --- tiled: gathers with per-target tap windows -------------------------------------------


@dataclass(frozen=True)
class GatherAxis:
    """One dimension of a gather ``target[t] = Σ_j weight[phase(t), j] · source[src(t, j)]``.

    Targets are grouped in ``phases``; every target of a phase uses the same ordered list
    of at most ``taps`` kernel taps (kernel tap ``k`` is entry ``j`` of phase ``r`` where
    ``slots[k] = (r, j)``), and entry ``j`` reads source ``src0 + (j − jlo)·step``:
    consecutive entries read sources ``step`` apart, so with ``step == 1`` a window of taps
    is one contiguous run of source pixels. ``table[:, t] = (phase, jlo, jhi, src0)``:
    target ``t`` takes entries ``jlo <= j < jhi`` (those whose source lies inside the
    source), the first at ``src0``.
    """

    phases: int
    taps: int
    step: int
    slots: Ints  # (K, 2)
    table: Ints  # (4, targets)


def forward_axis(I: int, O: int, K: int, s: int, p: int, d: int) -> GatherAxis:
    """Forward: output ``o`` gathers inputs ``i = (o + p − k·d) / s`` where that divides.

    The phase is ``o mod s`` (the sub-pixel decomposition): taps with
    ``k·d ≡ o + p (mod s)`` contribute, and they form an arithmetic progression in ``k``
    whose inputs are ``d / gcd(s, d)`` apart. Taps are ordered by increasing input.
    """
    step = d // math.gcd(s, d)
    per_phase: list[list[tuple[int, int]]] = []  # (input offset, k), sorted by offset
    for r in range(s):
        offsets = sorted(((r + p - k * d) // s, k) for k in range(K) if (r + p - k * d) % s == 0)
        per_phase.append(offsets)
    J = max(1, max(len(o) for o in per_phase))
    slots = np.zeros((K, 2), dtype=np.int64)
    for r, offsets in enumerate(per_phase):
        for j, (_, k) in enumerate(offsets):
            slots[k] = (r, j)
    table = np.zeros((4, O), dtype=np.int64)
    for o in range(O):
        r, q = o % s, o // s
        inputs = [q + off for off, _ in per_phase[r]]
        valid = [j for j, i in enumerate(inputs) if 0 <= i < I]
        if valid:  # the valid taps are a contiguous range: inputs increase with j
            table[:, o] = (r, valid[0], valid[-1] + 1, inputs[valid[0]])
        else:
            table[:, o] = (r, 0, 0, 0)
    return GatherAxis(s, J, step, slots, table)


def grad_input_axis(I: int, O: int, K: int, s: int, p: int, d: int) -> GatherAxis:
    """grad_input: input ``i`` gathers grad_output at ``o = i·s − p + k·d`` for every tap.

    One phase whose taps are the kernel in order; consecutive taps read outputs ``d`` apart.
    """
    table = np.zeros((4, I), dtype=np.int64)
    for i in range(I):
        valid = [k for k in range(K) if 0 <= i * s - p + k * d < O]
        if valid:
            table[:, i] = (0, valid[0], valid[-1] + 1, i * s - p + valid[0] * d)
    slots = np.stack([np.zeros(K, dtype=np.int64), np.arange(K, dtype=np.int64)], axis=1)
    return GatherAxis(1, K, d, slots, table)


GATHER_SKEW = 32
"""Elements added to the strides between a gather's batch entries (in its channels-last
source) and between its target channels (in the packed weights): both are otherwise a
multiple of 4 KiB in most layers, and the 8 rows a 4×4 block streams would then share
one set of L1 cache lines."""


TILE_ROWS = 6
"""Broadcast rows of a GEMM tile (``_gemm_kernels``): input channels in grad_weight."""
TILE_VECTORS = 4
"""SIMD vectors per row of a GEMM tile: ``TILE_ROWS·TILE_VECTORS = 24`` accumulators
leave 8 of AVX-512's 32 registers for operands."""
NARROW_VECTORS = 2
"""SIMD vectors per row of a narrow GEMM tile (8 or 6 rows of 32 float32 lanes): channel
counts that fill half of a wide row, or three quarters of two (32, 96), fill narrow rows."""
VECTOR_BYTES = 64
"""One AVX-512 register; on narrower SIMD LLVM splits each vector operation."""


def source_stride(pixels: int, channels: int) -> int:
    """The stride between a gather source's ``(g, n)`` blocks of ``pixels × channels``."""
    return pixels * channels + GATHER_SKEW


def skewed(
    pack: tuple[NDArray[np.uint64], int, bool], targets: int
) -> tuple[NDArray[np.uint64], int, bool]:
    """``pack_weights``' ``(dest, row, full)`` with ``GATHER_SKEW`` more elements per
    target channel (``row``): each tap's phase block ``targets·row`` then moves along.
    The gap is never read."""
    dest, row, full = pack
    phase, rest = np.divmod(dest, np.uint64(targets * row))
    moved = phase * np.uint64(targets * (row + GATHER_SKEW)) + rest
    return moved.astype(np.uint64), row + GATHER_SKEW, full


def pack_offsets(
    axes: list[GatherAxis], targets: int, sources: int
) -> tuple[NDArray[np.uint64], int, bool]:
    """Where each tap goes in the packed weights ``(phases, targets, slots, sources)``.

    Returns ``(dest, row, full)``: tap ``k`` (row-major over the 3-D kernel) of a channel
    pair lands ``dest[k]`` past the pair's base ``target·row + source``; ``row`` is
    ``slots·sources``; ``full`` says whether every slot holds a tap. ``dest`` is unsigned,
    so the kernel indexing with it needs no negative-index test.
    """
    slots = math.prod(a.taps for a in axes)
    row = slots * sources
    P = [a.phases for a in axes]
    J = [a.taps for a in axes]
    dest = []
    for kd, kh, kw in itertools.product(*(range(len(a.slots)) for a in axes)):
        (pd, jd), (ph, jh), (pw, jw) = axes[0].slots[kd], axes[1].slots[kh], axes[2].slots[kw]
        phase = (pd * P[1] + ph) * P[2] + pw
        slot = (jd * J[1] + jh) * J[2] + jw
        dest.append(phase * targets * row + slot * sources)
    full = len(dest) == math.prod(P) * slots
    return np.array(dest, dtype=np.uint64), row, full


# --- tiled backward: grad_output split by phase (per-tap planes) ---------------------------


@dataclass(frozen=True)
class PhaseAxis:
    """grad_output along one dimension split by phase: ``o = r + s·q``, ``0 <= r < s``.

    Tap ``k`` pairs input ``i`` with phase ``r_k`` and ``q = i + c_k``
    (``k·d − p = s·c_k + r_k``); ``table[:, k] = (r_k, c_k, lo_k, hi_k)`` with
    ``lo_k <= i < hi_k`` the inputs whose ``q`` is a real output of that phase.

    The phase planes have ``rows`` entries along this axis (``ceil(O / s)``).
    """

    phases: int
    rows: int
    table: Ints  # (4, K)


def phase_axis(I: int, O: int, K: int, s: int, p: int, d: int) -> PhaseAxis:
    Q = -(-O // s)
    table = np.zeros((4, K), dtype=np.int64)
    for k in range(K):
        c, r = divmod(k * d - p, s)
        q_valid = -(-(O - r) // s) if r < O else 0  # outputs r, r+s, ... below O
        lo, hi = max(0, -c), min(I, q_valid - c)
        table[:, k] = (r, c, lo, max(lo, hi))
    return PhaseAxis(s, Q, table)
