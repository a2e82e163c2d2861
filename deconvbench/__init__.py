"""deconvbench: benchmark and verify transposed-convolution strategies, forward and backward."""

from __future__ import annotations

from .api import conv_transpose, conv_transpose_backward, implementations
from .errors import DeconvbenchError, InputError, ProblemError, Unavailable, Unsupported
from .problem import Problem

__version__ = "0.1.0"

__all__ = [
    "DeconvbenchError",
    "InputError",
    "Problem",
    "ProblemError",
    "Unavailable",
    "Unsupported",
    "__version__",
    "conv_transpose",
    "conv_transpose_backward",
    "implementations",
]
