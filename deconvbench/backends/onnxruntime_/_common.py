"""What the backend's modules share without importing onnx or onnxruntime: the packages it
needs, the dtypes it declares, tensor names, and the shapes of the backward's intermediates."""

from __future__ import annotations

import importlib.util

from ...problem import Problem

REQUIRED = ("onnx", "onnxruntime")

DTYPES = frozenset({"float32"})
"""The CPU provider's Conv and ConvTranspose kernels are float32 only: float64 has none
(``NOT_IMPLEMENTED``); float16 runs only between Casts to float32 that the runtime inserts
where it has no float16 kernel (x86), which would time a float32 convolution plus the casts;
bfloat16 is not a type Conv or ConvTranspose accepts."""

X, W, B, Y = "x", "weight", "bias", "y"
GRAD_OUTPUT = "grad_output"
GRAD_INPUT, GRAD_WEIGHT, GRAD_BIAS = "grad_input", "grad_weight", "grad_bias"


def missing_modules() -> list[str]:
    """Which of the packages this backend needs cannot be imported here (cheap: no import)."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def grad_input_length(problem: Problem) -> tuple[int, ...]:
    """Spatial size of the grad_input Conv's output, before its crop to the input's size:
    ``in + ⌊output_padding/stride⌋``."""
    return tuple(i + op // s for i, op, s in zip(
        problem.input, problem.output_padding, problem.stride, strict=True))  # fmt: skip


def grad_weight_length(problem: Problem) -> tuple[int, ...]:
    """Spatial size of the grad_weight Conv's output, before its crop to the kernel's size:
    ``k + ⌊output_padding/dilation⌋``."""
    return tuple(k + op // d for k, op, d in zip(
        problem.kernel, problem.output_padding, problem.dilation, strict=True))  # fmt: skip


def forward_padding(problem: Problem) -> tuple[list[int], list[int], list[int]]:
    """ConvTranspose's ``pads``, its ``output_padding``, and zeros to append after it.

    Where ``output_padding < stride``: ``pads = padding`` both sides and ``output_padding``
    as it is (a torch export's node). ONNX Runtime refuses ``output_padding ≥ stride``
    (torch takes it when the dilation is larger); those dimensions move it into the pads,
    which ONNX allows to differ per side: the output ends ``output_padding`` past the
    uncropped result's end less ``padding``, so the end pad is ``padding − output_padding``
    when that is not negative; otherwise the end pad is 0 and the remaining ``e =
    output_padding − padding`` positions (past every input's reach: zeros, then the bias)
    are ``output_padding`` when ``e < stride``, or appended with a ``Pad`` node.
    """
    ends: list[int] = []
    adjust: list[int] = []
    tails: list[int] = []
    for p, op, s in zip(problem.padding, problem.output_padding, problem.stride, strict=True):
        if op < s:
            ends.append(p)
            adjust.append(op)
            tails.append(0)
        elif op <= p:
            ends.append(p - op)
            adjust.append(0)
            tails.append(0)
        else:
            ends.append(0)
            adjust.append(op - p if op - p < s else 0)
            tails.append(0 if op - p < s else op - p)
    return [*problem.padding, *ends], adjust, tails


def unreachable_output(problem: Problem) -> int | None:
    """The first dimension whose output lies wholly past every input's reach, or None.

    There the ConvTranspose of :func:`forward_padding` would have an empty output before the
    appended zeros, and ONNX Runtime refuses an output dimension ``<= 0``.
    """
    _, _, tails = forward_padding(problem)
    for axis, (tail, length) in enumerate(zip(tails, problem.output, strict=True)):
        if tail and length - tail <= 0:
            return axis
    return None
