"""The benchmarks' first step: drop OpenBLAS's environment overrides before numpy loads it.

Imported before numpy by each script run as ``python benchmarks/<script>.py`` (the script's
folder is on ``sys.path``). Only ``os`` and ``sys`` are imported here, so OpenBLAS has not
been loaded yet when :func:`restart_without_blas_overrides` runs.
"""

from __future__ import annotations

import os
import sys

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
"""OpenBLAS reads these once, when numpy loads it; they can pin a slower kernel or blocking."""


def restart_without_blas_overrides() -> None:
    """Re-exec the running script with the overrides removed (only this run's environment)."""
    found = [name for name in BLAS_OVERRIDES if name in os.environ]
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    print(f"unsetting {', '.join(found)} for this run and restarting", file=sys.stderr, flush=True)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
