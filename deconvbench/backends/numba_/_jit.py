"""The one place that imports numba: a typed ``njit`` and ``prange``.

Only the kernel modules import this, and only the strategies' ``prepare_*`` import those,
after :func:`~deconvbench.backends.numba_._common.numba_unavailable_reason` said numba is
there; importing the package never needs numba.

Every kernel is compiled with ``cache=True``: numba keeps the machine code beside this
package (``__pycache__``) or, where that is not writable, in its user-wide cache
directory (``NUMBA_CACHE_DIR`` overrides both), so a later process loads it instead of
compiling. Only when numba can write to none of them (a read-only install with a
read-only home) do we point it at a temporary directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])

FASTMATH: frozenset[str] = frozenset({"reassoc", "contract", "nsz"})
"""LLVM flags for the dot-product kernels.

``reassoc`` lets LLVM split a sum across SIMD lanes (a blocked summation order, which is
at least as accurate as the sequential one); ``contract`` allows fused multiply-adds;
``nsz`` lets a −0.0 come out as +0.0. Deliberately not ``nnan``/``ninf``/``afn``: values
are never assumed finite and no function is approximated.
"""

FALLBACK_CACHE_DIR = Path(tempfile.gettempdir()) / "deconvbench-numba-cache"

prange = numba.prange
_config: Any = numba.config  # its settings are module attributes the stubs do not list


def kernel(*, parallel: bool = False, fastmath: frozenset[str] = frozenset()) -> Callable[[F], F]:
    """``numba.njit(cache=True, ...)`` that keeps the function's type for mypy."""

    def wrap(fn: F) -> F:
        options: dict[str, Any] = {"cache": True, "parallel": parallel}
        if fastmath:
            options["fastmath"] = set(fastmath)
        try:
            return cast(F, numba.njit(**options)(fn))
        except RuntimeError as exc:  # numba looks for a cache directory when decorating
            if "no locator available" not in str(exc) or _config.CACHE_DIR:
                raise
        _config.CACHE_DIR = str(FALLBACK_CACHE_DIR)
        return cast(F, numba.njit(**options)(fn))

    return wrap
