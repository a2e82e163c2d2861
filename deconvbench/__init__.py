"""deconvbench: benchmark and verify transposed-convolution strategies, forward and backward."""

from __future__ import annotations

from .api import conv_transpose, conv_transpose_backward, implementations
from .errors import (
    DeconvbenchError,
    InputError,
    InsufficientMemory,
    ProblemError,
    Unavailable,
    Unsupported,
)
from .problem import Problem
from .version import VERSION

__version__ = VERSION

__all__ = [
    "DeconvbenchError",
    "InputError",
    "InsufficientMemory",
    "Problem",
    "ProblemError",
    "Unavailable",
    "Unsupported",
    "__version__",
    "conv_transpose",
    "conv_transpose_backward",
    "implementations",
]
