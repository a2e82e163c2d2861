"""The numpy backend: five algorithms, forward and backward, 1-D to 3-D, BLAS underneath."""

from __future__ import annotations

from ..base import Strategy
from .direct import Direct


def strategies() -> list[Strategy]:
    """Entry point of the ``numpy`` backend (group ``deconvbench.backends``)."""
    return [Direct()]
