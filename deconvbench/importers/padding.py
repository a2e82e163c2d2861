"""A source's padding as torch's: symmetric ``padding`` plus ``output_padding`` at the end.

A transposed convolution's full output, before any cropping, has ``(i-1)·s + d·(k-1) + 1``
positions per dimension. Torch crops ``padding`` at both ends and then adds
``output_padding`` (``0 <= output_padding < max(stride, dilation)``) at the end. Other
sources crop ``begin`` and ``end`` positions, which may differ (ONNX pads, SAME_UPPER,
Keras 'same' with an odd total), and may add positions at the end of their own.

:func:`torch_padding` finds the torch problem with the same output size and the same work.
When the source crops more at the end than at the start, torch's window starts one position
later than the source's: the shapes and the cost are the same, the output is shifted by one
(``shifted``). When the output size's parity can't be matched (stride and dilation 1 allow no
``output_padding``), there is no such problem, and the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TorchPadding:
    padding: int
    output_padding: int
    shifted: bool


class NoTorchPadding(ValueError):
    """The source's padding has no torch equivalent (the message says why)."""


def full_size(input_size: int, kernel: int, stride: int, dilation: int) -> int:
    """Positions of the uncropped output along one dimension."""
    return (input_size - 1) * stride + dilation * (kernel - 1) + 1


def torch_padding(
    input_size: int, kernel: int, stride: int, dilation: int, output_size: int, begin: int
) -> TorchPadding:
    """The torch padding of one dimension whose output has ``output_size`` positions and
    starts ``begin`` positions into the full output (the source's padding at the start).

    The source's own start when torch can crop there; else a start one position off.
    """
    if output_size < 1:
        raise NoTorchPadding(f"an output of {output_size} positions")
    cropped = full_size(input_size, kernel, stride, dilation) - output_size  # = 2p - op
    limit = max(stride, dilation)
    for padding in (begin, begin + 1, begin - 1):
        output_padding = 2 * padding - cropped
        if padding >= 0 and 0 <= output_padding < limit:
            return TorchPadding(padding, output_padding, shifted=padding != begin)
    nearest = max(0, -(-cropped // 2))  # torch's own start for this output size
    if 0 <= 2 * nearest - cropped < limit:
        raise NoTorchPadding(
            f"the source's window starts {begin} positions into the full output and torch's "
            f"would start {nearest}: more than one position apart"
        )
    raise NoTorchPadding(
        f"an output of {output_size} positions from input {input_size}, kernel {kernel}, "
        f"stride {stride}, dilation {dilation} has no torch padding (it crops {cropped}, "
        f"and output_padding must be 0 to {limit - 1})"
    )
