"""``subpixel``: phase (polyphase) decomposition into small dense convolutions.

Output position ``o = i·s − p + k·d``. Split the outputs of each spatial dimension by phase
``r = o mod s``: the outputs ``r, r + s, r + 2s, …`` receive only the taps ``k`` with
``k·d ≡ p + r (mod s)``, an arithmetic progression ``k0, k0 + m, …`` (``m = s / gcd(s, d)``),
and tap ``k0 + j·m`` reads input ``q − t0 − j·d'`` for phase output ``q``
(``d' = d / gcd(s, d)``, ``t0 = (k0·d − p − r) / s``). Each phase is therefore an ordinary
dense convolution on the *undilated* input with a flipped sub-kernel ``W[k0::m]`` at
dilation ``d'``, after padding the input by ``t0 + (n−1)·d'`` on the left (negative crops).
The s^d phase results are interleaved into the output by strided slice assignment.

Exact for every parameter: when the stride does not divide the kernel the phases get
sub-kernels of different sizes, a phase with no taps at all is zero (plus bias), and
``output_padding`` only changes how many outputs a phase has. Work is F0 when s divides k.

Backward is written out (not autograd): per phase a convolution backward on the undilated
input, with grad_output gathered by the same strided slices, and each phase's kernel
gradient written into its strided slice of one kernel gradient.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)

from ...problem import Pass, Problem
from ._common import (
    CONV,
    bias_view,
    conv_weight,
    library_allowance,
    pad_amounts,
    slow_path_columns,
    spatial_dims,
)
from ._strategy import AutogradStrategy


@dataclass(frozen=True)
class AxisPhase:
    """One phase of one spatial dimension: which outputs, from which taps and inputs."""

    offset: int  # first output index; the phase owns offset, offset + stride, ...
    count: int  # how many outputs it owns
    taps: slice | None  # kernel taps feeding it (k0::m); None: no tap reaches it
    pad: tuple[int, int]  # input padding before/after (negative crops)
    dilation: int  # the sub-kernel's dilation over the undilated input
    flipped: slice | None = None  # the same taps, reversed, as a slice of the flipped kernel


def axis_phases(
    size_in: int, size_out: int, kernel: int, stride: int, padding: int, dilation: int
) -> tuple[AxisPhase, ...]:
    """The phases of one dimension (``min(stride, size_out)`` of them, none empty of outputs)."""
    common = math.gcd(stride, dilation)
    step, sub_dilation = stride // common, dilation // common
    phases = []
    for r in range(min(stride, size_out)):
        count = (size_out - r + stride - 1) // stride
        # Taps feeding phase r form one residue class modulo `step`: its least member, if any.
        k0 = next((k for k in range(step) if (k * dilation - padding - r) % stride == 0), kernel)
        if k0 >= kernel:
            phases.append(AxisPhase(r, count, None, (0, 0), sub_dilation))
            continue
        taps = len(range(k0, kernel, step))
        t0 = (k0 * dilation - padding - r) // stride  # exact: r was chosen to make it so
        before = t0 + (taps - 1) * sub_dilation
        length = count + (taps - 1) * sub_dilation  # the padded input the convolution reads
        after = length - before - size_in
        if not (-before < size_in and length - before > 0):  # the window misses the input
            phases.append(AxisPhase(r, count, None, (before, after), sub_dilation))
            continue
        last = k0 + (taps - 1) * step  # tap k sits at kernel - 1 - k in the flipped kernel
        flipped = slice(kernel - 1 - last, kernel - k0, step)
        phases.append(
            AxisPhase(r, count, slice(k0, None, step), (before, after), sub_dilation, flipped)
        )
    return tuple(phases)


@lru_cache(maxsize=512)
def phases(problem: Problem) -> tuple[tuple[AxisPhase, ...], ...]:
    """Per spatial dimension, its phases; the problem's phases are their product."""
    return tuple(axis_phases(*axis) for axis in problem.axes())


@dataclass(frozen=True)
class PhaseConv:
    """One phase of the whole problem, ready to run: where it reads, writes, and how."""

    out: tuple[slice, ...]  # its outputs, strided slices of the output's spatial dims
    kernel: tuple[slice, ...]  # its sub-kernel, strided slices of the flipped kernel
    padding: list[int]  # symmetric padding, done inside the convolution
    lo: list[int]  # the rest, before (negative crops), done by F.pad
    hi: list[int]  # and after
    dilation: list[int]

    @property
    def padded(self) -> bool:
        return any(self.lo) or any(self.hi)


@lru_cache(maxsize=512)
def plan(problem: Problem) -> tuple[tuple[PhaseConv, ...], tuple[tuple[slice, ...], ...]]:
    """The phase convolutions, and the output slices no tap reaches (bias only)."""
    convs, empty = [], []
    for combo in itertools.product(*phases(problem)):
        out = tuple(slice(a.offset, None, s) for a, s in zip(combo, problem.stride, strict=True))
        if any(a.flipped is None for a in combo):
            empty.append(out)
            continue
        # Symmetric padding is free inside the convolution; only the rest needs a padded copy.
        symmetric = [max(0, min(a.pad)) for a in combo]
        convs.append(
            PhaseConv(
                out,
                tuple(a.flipped for a in combo if a.flipped is not None),
                symmetric,
                [a.pad[0] - sym for a, sym in zip(combo, symmetric, strict=True)],
                [a.pad[1] - sym for a, sym in zip(combo, symmetric, strict=True)],
                [a.dilation for a in combo],
            )
        )
    return tuple(convs), tuple(empty)


ALL = (slice(None), slice(None))
"""Batch and channel axes, whole."""


def _input(phase: PhaseConv, x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, pad_amounts(phase.lo, phase.hi)) if phase.padded else x


def _overlap(
    phase: PhaseConv, size: tuple[int, ...]
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Where the padded input of a phase overlaps x: slices of the padded input, then of x."""
    padded, own = [], []
    for lo, hi, n in zip(phase.lo, phase.hi, size, strict=True):
        first, stop = max(0, -lo), min(n, n + hi)  # x's part that survives cropping
        padded.append(slice(first + lo, stop + lo))
        own.append(slice(first, stop))
    return tuple(padded), tuple(own)


def forward(
    problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    convs, empty = plan(problem)
    # One flip of the whole kernel; each phase's sub-kernel is then a strided view of it
    # (flipping s^d strided sub-kernels one by one costs several times more).
    flipped = conv_weight(weight, problem.groups)
    y = x.new_zeros(problem.y_shape) if empty else x.new_empty(problem.y_shape)
    for out in empty:  # no tap reaches these outputs: bias only
        if bias is not None:
            y[(*ALL, *out)] = bias_view(bias, problem.ndim)
    for phase in convs:
        y[(*ALL, *phase.out)] = CONV[problem.ndim](
            _input(phase, x),
            flipped[(*ALL, *phase.kernel)],
            bias,
            1,
            phase.padding,
            phase.dilation,
            problem.groups,
        )
    return y


def backward(
    problem: Problem, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per phase, the convolution backward of that phase; gradients land in strided slices.

    Written out rather than left to autograd: autograd would give every phase's sub-kernel
    gradient a zero-filled tensor the size of the whole kernel and add them up, which on
    wide layers costs as much as the phase convolutions themselves.
    """
    convs, _ = plan(problem)
    flipped = conv_weight(weight, problem.groups)
    grad_x = torch.zeros_like(x)
    grad_flipped = torch.zeros_like(flipped)  # taps no phase uses keep a zero gradient
    ones, zeros = [1] * problem.ndim, [0] * problem.ndim
    for phase in convs:
        gx, gw, _ = torch.ops.aten.convolution_backward(
            grad_output[(*ALL, *phase.out)],
            _input(phase, x),
            flipped[(*ALL, *phase.kernel)],
            None,
            ones,
            phase.padding,
            phase.dilation,
            False,
            zeros,
            problem.groups,
            [True, True, False],
        )
        if phase.padded:  # F.pad's gradient: the part of gx over x, added in place
            inside, own = _overlap(phase, problem.input)
            grad_x[(*ALL, *own)] += gx[(*ALL, *inside)]
        else:
            grad_x.add_(gx)
        grad_flipped[(*ALL, *phase.kernel)] = gw  # phases own disjoint taps
    # conv_weight is its own inverse: channels swap back and the flip undoes itself.
    grad_w = conv_weight(grad_flipped, problem.groups)
    grad_b = grad_output.sum((0, *spatial_dims(problem))) if problem.bias else None
    return grad_x, grad_w, grad_b


class Subpixel(AutogradStrategy):
    """Forward in torch ops; backward the explicit per-phase formulas of :func:`backward`."""

    algorithm = "subpixel"
    description = "s^d phase convolutions on the undilated input, interleaved by strided slices"
    explicit_backward = staticmethod(backward)

    def forward(
        self, problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return forward(problem, x, weight, bias)

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Operands' copies, y, the flipped kernel, and the worst phase: its padded input,
        its result (and, backward, grad_output's contiguous slice, the phase's gradients)
        and the library allowance of its convolution (off oneDNN, up to three im2col
        buffers of the phase forward and four backward, as measured with float64).
        Backward adds grad_input and the kernel gradients (flipped, then flipped back),
        and holds a phase's gradients while the next phase's are computed."""
        x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
        b = problem.out_channels if problem.bias else 0
        per_dim = phases(problem)
        counts = (max(a.count for a in dim) for dim in per_dim)
        lengths = (
            max([i] + [i + a.pad[0] + a.pad[1] for a in dim])
            for dim, i in zip(per_dim, problem.input, strict=True)
        )
        taps = math.prod(
            max((len(range(k)[a.taps]) for a in dim if a.taps is not None), default=0)
            for dim, k in zip(per_dim, problem.kernel, strict=True)
        )
        count = math.prod(counts)
        out = problem.batch * problem.out_channels * count
        padded = problem.batch * problem.in_channels * math.prod(lengths)
        conv = library_allowance(padded, w, out)
        fwd = pass_ == "forward"
        cols = problem.batch * problem.in_channels * taps * count
        conv += slow_path_columns(self.torch_device, problem, (3 if fwd else 4) * cols)
        if fwd:
            return (x + w + b + w + y + 2 * out + padded + conv) * problem.itemsize
        grads = x + w + 2 * out + 3 * padded + w + w + b
        return (y + x + w + w + grads + conv) * problem.itemsize

