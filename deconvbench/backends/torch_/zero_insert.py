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

import math

import torch

from ...problem import Pass, Problem
from ._common import CONV, conv_weight, library_allowance, slow_path_columns
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

    def workspace_bytes(self, problem: Problem, pass_: Pass = "forward") -> int:
        """The operands' copies, the zero-dilated buffer (≈ s^d times the input), the flipped
        kernel, y and the convolution's library allowance (or, off oneDNN, its im2col
        columns: ``∏K`` times the output per input channel and sample, of the whole batch
        without dilation; one buffer forward and three backward, as measured with float64).
        Backward adds the forward graph preparation keeps (buffer, flipped kernel, y) and
        the gradients of the buffer and the kernel that autograd makes before gathering
        grad_input."""
        x, w, y = (math.prod(s) for s in (problem.x_shape, problem.weight_shape, problem.y_shape))
        b = problem.out_channels if problem.bias else 0
        reach = [d * (k - 1) for d, k in zip(problem.dilation, problem.kernel, strict=True)]
        lo = [r - p for r, p in zip(reach, problem.padding, strict=True)]
        hi = [low + op for low, op in zip(lo, problem.output_padding, strict=True)]
        spans = [(i - 1) * s + 1 for i, s in zip(problem.input, problem.stride, strict=True)]
        sizes = (n + max(a, 0) + max(c, 0) for n, a, c in zip(spans, lo, hi, strict=True))
        buffer = problem.batch * problem.in_channels * math.prod(sizes)
        # slow_conv2d/3d unfold the whole batch; the dilated kernels one sample at a time
        samples = problem.batch if all(d == 1 for d in problem.dilation) else 1
        cols = problem.in_channels * math.prod(problem.kernel) * math.prod(problem.output)
        cols *= samples
        fwd = pass_ == "forward"
        conv = library_allowance(buffer, w, y)
        conv += slow_path_columns(self.torch_device, problem, cols * (1 if fwd else 3))
        if pass_ == "forward":
            return (x + w + b + buffer + w + y + conv) * problem.itemsize
        graph = buffer + w + y
        grads = buffer + w + x + w + b
        return (x + w + y + b + graph + grads + conv) * problem.itemsize
