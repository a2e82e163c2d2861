"""``zero-insert``: an ordinary convolution over the zero-dilated, padded input.

Per spatial dimension, ``stride − 1`` zeros go between neighbouring inputs, then
``dilation·(kernel−1) − padding`` zeros on the left and that plus ``output_padding`` on
the right (a negative amount crops instead). A stride-1 convolution with the flipped,
channel-transposed kernel at the same dilation then gives the transposed convolution
exactly. The zero buffer is ≈ s^d times the input and the convolution does ≈ s^d times
the useful work: that is the cost this strategy exists to show.

Backward is autograd over this graph: the convolution's backward produces the gradient of
the whole zero-dilated buffer, and grad_input is its strided gather.
"""

from __future__ import annotations

import torch

from ...problem import Problem
from ._common import CONV, conv_weight
from ._strategy import AutogradStrategy


def dilated_padded(problem: Problem, x: torch.Tensor) -> torch.Tensor:
    """``x`` with ``stride − 1`` zeros between elements and the transposed padding around."""
    reach = [d * (k - 1) for d, k in zip(problem.dilation, problem.kernel, strict=True)]
    lo = [r - p for r, p in zip(reach, problem.padding, strict=True)]
    hi = [low + op for low, op in zip(lo, problem.output_padding, strict=True)]
    spans = [(i - 1) * s + 1 for i, s in zip(problem.input, problem.stride, strict=True)]
    sizes = [span + max(a, 0) + max(b, 0) for span, a, b in zip(spans, lo, hi, strict=True)]
    buffer = x.new_zeros((*x.shape[:2], *sizes))
    place = tuple(
        slice(max(a, 0), max(a, 0) + span, s)
        for a, span, s in zip(lo, spans, problem.stride, strict=True)
    )
    buffer[(slice(None), slice(None), *place)] = x
    if min(lo) < 0 or min(hi) < 0:  # padding beyond the kernel's reach crops instead
        crop = tuple(
            slice(max(-a, 0), size - max(-b, 0)) for a, b, size in zip(lo, hi, sizes, strict=True)
        )
        buffer = buffer[(slice(None), slice(None), *crop)]
    return buffer


def forward(
    problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    return CONV[problem.ndim](
        dilated_padded(problem, x),
        conv_weight(weight, problem.groups),
        bias,
        1,
        0,
        problem.dilation,
        problem.groups,
    )


class ZeroInsert(AutogradStrategy):
    algorithm = "zero-insert"
    description = "conv{1,2,3}d on the zero-dilated, padded input with the flipped kernel"

    def forward(
        self, problem: Problem, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        return forward(problem, x, weight, bias)
