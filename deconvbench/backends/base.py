"""Deprecated: the strategy interface's old import path, kept for one release.

Import from :mod:`deconvbench.backends` instead (``from deconvbench.backends import Strategy``).
"""

from __future__ import annotations

import warnings

from . import *  # noqa: F403  (the names of deconvbench.backends, the new path)

warnings.warn(
    "deconvbench.backends.base is deprecated and will be removed in the next release; "
    "import Strategy, Capabilities, Prepared and numpy_fetch from deconvbench.backends",
    DeprecationWarning,
    stacklevel=2,
)
