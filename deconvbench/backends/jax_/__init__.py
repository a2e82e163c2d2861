"""The jax backend: XLA's CPU convolution, jit-compiled per problem in preparation.

* ``jax/native``: ``lax.conv_general_dilated`` with the stride as input dilation (forward),
  ``jax.vjp`` of it (backward); 1-D to 3-D, every dtype, groups, dilation, output_padding.

jax is an optional extra (``pip install 'deconvbench[jax]'``). Nothing here imports it until
a strategy prepares (importing jax is slow, and XLA fixes its thread pool when JAX
initialises: :mod:`.pool`); without it the strategy is listed unavailable with that hint.
"""

from __future__ import annotations

from ..strategy import Strategy
from .native import INSTALL_HINT, Compilation, JaxPrepared, Native, jax_unavailable_reason


def strategies() -> list[Strategy]:
    """Entry point of the ``jax`` backend (group ``deconvbench.backends``)."""
    return [Native()]


__all__ = [
    "INSTALL_HINT",
    "Compilation",
    "JaxPrepared",
    "Native",
    "jax_unavailable_reason",
    "strategies",
]
