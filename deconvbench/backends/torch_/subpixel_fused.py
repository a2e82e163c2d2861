"""``subpixel-fused``: sub-pixel in the ESPCN form, one convolution for every phase.

``subpixel`` runs s^d small convolutions, one per phase. This one pads every phase's
sub-kernel with zeros to a common window (the geometry is in ``numpy_/_fused.py``, shared
with ``numpy/subpixel-fused``) and stacks them as the output channels of *one* ordinary
convolution with ``P·Cout`` channels (P = ∏s) over the once-padded input: one large
library call (oneDNN, cuDNN) instead of s^d small ones. A depth-to-space (the pixel
shuffle, written as P strided copies so that it crops to ``[0, O)`` in the same pass) then
puts phase ``rho``'s channels at output positions ``m·s + rho − p``. The bias rides in the
convolution, repeated per phase.

**Wasted products.** When s does not divide k the zeros that pad the short sub-kernels
are multiplied like any weight: a fraction ``1 − ∏k / ∏(s·⌈k/s⌉)`` of the convolution's
products (``wasted_fraction``: k3 s2 in 2-D wastes 44%; s > k wastes 1 − k/s per
dimension). With dilation the window is sampled at the gcd of the taps' offsets: s = 1 with
any dilation wastes nothing. The row's note says the fraction (``engine:
wasted_products=…``).

Backward is written out, like ``subpixel``'s, in the fused form: grad_output's
space-to-depth is the convolution's output gradient, so one
``aten.convolution_backward`` gives grad_input (over the padded input, cropped back) and
the fused kernel's gradient, whose taps are gathered back to the weight layout. Device-
agnostic torch code: the same class is ``torch-cpu`` and ``torch-cuda``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)

from ...problem import Pass, Problem
from ..numpy_._fused import (
    Index,
    ReportsWaste,
    broadcast_shapes,
    fused_axes,
    phase_count,
    phase_parts,
    tap_index,
)
from ._common import CONV, library_allowance, pad_amounts, slow_path_columns
from ._strategy import AutogradStrategy


@lru_cache(maxsize=512)
def _slot_index(problem: Problem, device: str) -> Index:
    """``[:, :, *rho_k, :, *slot_k]`` into the fused weight ``(g, Cout/g, *s, Cin/g, *L)``,
    as index tensors on ``device`` (made once: on CUDA each is an upload)."""
    rhos, slots = tap_index(problem)
    shapes = broadcast_shapes(problem.ndim)

    def index(values: tuple[int, ...], shape: tuple[int, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device).reshape(shape)

    r = [index(v, sh) for v, sh in zip(rhos, shapes, strict=True)]
    q = [index(v, sh) for v, sh in zip(slots, shapes, strict=True)]
    return (slice(None), slice(None), *r, slice(None), *q)


def _fused_shape(problem: Problem) -> tuple[int, ...]:
    g = problem.groups
    slots = (a.slots for a in fused_axes(problem))
    return (g, problem.out_channels // g, *problem.stride, problem.in_channels // g, *slots)


def fused_weight(problem: Problem, weight: torch.Tensor) -> torch.Tensor:
    """The zero-padded phase sub-kernels as one convolution weight ``(P·Cout, Cin/g, *L)``,
    output channels ordered ``(group, co, *rho)``, already flipped."""
    g, nd = problem.groups, problem.ndim
    wk = weight.reshape(g, weight.shape[0] // g, *weight.shape[1:])  # (g, Cin_g, Cout_g, *K)
    taps_first = wk.movedim(tuple(range(3, 3 + nd)), tuple(range(nd))).transpose(-1, -2)
    wf = weight.new_zeros(_fused_shape(problem))
    wf[_slot_index(problem, str(weight.device))] = taps_first  # (*K, g, Cout_g, Cin_g)
    return wf.reshape(problem.out_channels * phase_count(problem), -1, *wf.shape[3 + nd :])


def _padding(problem: Problem) -> tuple[list[int], list[int], list[int]]:
    """The input padding of the fused convolution: the symmetric part (free inside the
    convolution), and the rest before and after (negative crops)."""
    pads = [a.pad for a in fused_axes(problem)]
    sym = [max(0, min(pad)) for pad in pads]
    return (
        sym,
        [lo - s for (lo, _), s in zip(pads, sym, strict=True)],
        [hi - s for (_, hi), s in zip(pads, sym, strict=True)],
    )


def _overlap(problem: Problem) -> tuple[Index, Index] | None:
    """Where x survives the explicit padding: slices of x and of its padded copy (None when
    nothing of x is read: every tap lands in cropped output)."""
    _, lo, hi = _padding(problem)
    own, padded = [], []
    for before, after, n in zip(lo, hi, problem.input, strict=True):
        start, stop = max(0, -before), min(n, n + after)
        if stop <= start:
            return None
        own.append(slice(start, stop))
        padded.append(slice(start + before, stop + before))
    return (slice(None), slice(None), *own), (slice(None), slice(None), *padded)


def _padded_input(problem: Problem, x: torch.Tensor) -> torch.Tensor:
    """x cropped, then zero-padded, to what the convolution reads beyond its own padding."""
    _, lo, hi = _padding(problem)
    if not any(lo) and not any(hi):
        return x
    overlap = _overlap(problem)
    if overlap is None:
        lengths = (n + a + b for n, a, b in zip(problem.input, lo, hi, strict=True))
        return x.new_zeros((*x.shape[:2], *lengths))
    x = x[overlap[0]]
    return F.pad(x, pad_amounts([max(0, a) for a in lo], [max(0, b) for b in hi]))


def forward(
    problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    axes = fused_axes(problem)
    sym, _, _ = _padding(problem)
    fused_bias = None if bias is None else bias.repeat_interleave(phase_count(problem))
    z = CONV[problem.ndim](
        _padded_input(problem, x),
        fused_weight(problem, weight),
        fused_bias,
        1,
        sym,
        [a.dilation for a in axes],
        problem.groups,
    )  # (N, P·Cout, *M): the one convolution
    z = z.view(problem.batch, problem.out_channels, *problem.stride, *z.shape[2:])
    y = x.new_empty(problem.y_shape)
    for phase, outs in phase_parts(axes):  # depth-to-space, cropped: every output once
        y[(slice(None), slice(None), *outs)] = z[phase]
    return y


def space_to_depth(problem: Problem, grad_output: torch.Tensor) -> torch.Tensor:
    """grad_output gathered into the convolution's output ``(N, P·Cout, *M)``; positions
    the forward's crop drops are zeros."""
    axes = fused_axes(problem)
    counts = [a.count for a in axes]
    gz = grad_output.new_zeros((problem.batch, problem.out_channels, *problem.stride, *counts))
    for phase, outs in phase_parts(axes):
        gz[phase] = grad_output[(slice(None), slice(None), *outs)]
    return gz.view(problem.batch, -1, *counts)


def backward(
    problem: Problem, grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One convolution backward in the fused form; its gradients mapped back."""
    nd = problem.ndim
    sym, _, _ = _padding(problem)
    wf = fused_weight(problem, weight)
    xp = _padded_input(problem, x)
    gxp, gwf, _ = torch.ops.aten.convolution_backward(
        space_to_depth(problem, grad_output),
        xp,
        wf,
        None,
        [1] * nd,
        sym,
        [a.dilation for a in fused_axes(problem)],
        False,
        [0] * nd,
        problem.groups,
        [True, True, False],
    )
    if xp is x:
        grad_x = gxp
    else:  # the explicit padding's gradient: the part over x
        grad_x = torch.zeros_like(x)
        overlap = _overlap(problem)
        if overlap is not None:
            grad_x[overlap[0]] = gxp[overlap[1]]
    # every tap's slot, (*K, g, Cout_g, Cin_g), back to (Cin, Cout/g, *K)
    taps_first = gwf.reshape(_fused_shape(problem))[_slot_index(problem, str(weight.device))]
    gw = taps_first.transpose(-1, -2).movedim(tuple(range(nd)), tuple(range(3, 3 + nd)))
    grad_w = gw.reshape(problem.weight_shape)
    grad_b = grad_output.sum((0, *range(2, 2 + nd))) if problem.bias else None
    return grad_x, grad_w, grad_b


class SubpixelFused(ReportsWaste, AutogradStrategy):
    """Forward in torch ops; backward the explicit fused formulas of :func:`backward`."""

    algorithm = "subpixel-fused"
    description = (
        "ESPCN sub-pixel: one convolution with s^d·Cout channels (phase sub-kernels "
        "zero-padded to one size) + pixel shuffle; wastes 1 − ∏k/∏(s·⌈k/s⌉) of its "
        "products when s ∤ k"
    )

    explicit_backward = staticmethod(backward)

    def forward(
        self, problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return forward(problem, x, weight, bias)

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """Operands' copies, y, the fused weight (and its bias), the padded input, the
        convolution's result and the library allowance of that call (off oneDNN, three
        im2col buffers forward and four backward, as ``subpixel`` measured). Backward adds
        grad_output's space-to-depth, the gradients over the padded input and the fused
        weight, grad_input, the gathered and final weight gradients."""
        axes = fused_axes(problem)
        x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
        b = problem.out_channels if problem.bias else 0
        p = phase_count(problem)
        slots, counts = math.prod(a.slots for a in axes), math.prod(a.count for a in axes)
        fused_w = p * problem.out_channels * (problem.in_channels // problem.groups) * slots
        z = problem.batch * problem.out_channels * p * counts
        padded = (
            problem.batch
            * problem.in_channels
            * math.prod(a.count + (a.slots - 1) * a.dilation for a in axes)
        )
        conv = library_allowance(padded, fused_w, z)
        cols = problem.batch * problem.in_channels * slots * counts
        fwd = pass_ == "forward"
        conv += slow_path_columns(self.torch_device, problem, (3 if fwd else 4) * cols)
        if fwd:
            return (x + w + b + fused_w + p * b + padded + z + y + conv) * problem.itemsize
        grads = z + fused_w + 2 * padded + fused_w + x + 2 * w + b
        return (y + x + w + grads + conv) * problem.itemsize
