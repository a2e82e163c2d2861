"""The software around a run: deconvbench itself, Python, the OS, memory, and the variables
that change how many threads or which kernels run."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from ..version import VERSION
from .probe import Facts, run

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "KMP_AFFINITY",
    "OMP_PROC_BIND", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG", "PYTORCH_CUDA_ALLOC_CONF", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
    "ATEN_CPU_CAPABILITY", "PJRT_NPROC", "NPROC", "XLA_FLAGS", "JAX_PLATFORMS",
)  # fmt: skip
"""Environment variables that change how many threads, which kernels or which devices run the
work (OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA and ATEN_CPU_CAPABILITY override the CPU's own ISA)."""


def deconvbench() -> Facts:
    root = Path(__file__).resolve().parents[2]
    facts: Facts = {"version": VERSION, "path": str(Path(__file__).resolve().parents[1])}
    # The checkout must be deconvbench's own: an installed copy can sit inside some other
    # repository (a project's venv), whose revision would say nothing about this code.
    top = run(["git", "rev-parse", "--show-toplevel"], cwd=root)
    own = top is not None and Path(top).resolve() == root
    revision = run(["git", "rev-parse", "HEAD"], cwd=root) if own else None
    if revision is None:
        facts.update(git_revision=None, git_dirty=None, reason="not a git checkout")
        return facts
    # Only tracked files count: a stray results CSV should not mark the code as modified.
    status = run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    facts.update(git_revision=revision, git_dirty=None if status is None else bool(status))
    return facts


def python() -> Facts:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def os_() -> Facts:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def memory() -> Facts:
    import psutil

    vm = psutil.virtual_memory()
    return {"total_gb": round(vm.total / 2**30, 1), "available_gb": round(vm.available / 2**30, 1)}


def variables() -> Facts:
    return {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
