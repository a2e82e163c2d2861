"""Strategies: the interface every backend implements, and the built-in backends.

Plugin authors import the interface from here::

    from deconvbench.backends import Capabilities, Prepared, Strategy, numpy_fetch

It lives in :mod:`deconvbench.backends.strategy`; each built-in backend is a subpackage
(``numpy_``, ``torch_``, ``numba_``) registered through the entry-point group
``deconvbench.backends``, exactly as a third-party backend is.
"""

from __future__ import annotations

from ..errors import Unavailable, Unsupported
from .strategy import (
    Array,
    Capabilities,
    Prepared,
    Strategy,
    StrategyFactory,
    numpy_fetch,
    run_threads,
)

__all__ = [
    "Array",
    "Capabilities",
    "Prepared",
    "Strategy",
    "StrategyFactory",
    "Unavailable",
    "Unsupported",
    "numpy_fetch",
    "run_threads",
]
