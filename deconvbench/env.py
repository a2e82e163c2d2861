"""Facts about the machine and the libraries that a benchmark's numbers depend on.

``collect()`` is what ``deconvbench env`` prints and what every run's sidecar records, so a
result can be explained (or distrusted) later: a different BLAS, a CPU governor set to
``powersave``, ``OMP_NUM_THREADS`` left at 1, another driver. It must be cheap and must
never fail: every section is probed on its own, and a section that cannot be probed
becomes ``None`` values plus a ``reason`` instead of an exception.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .version import VERSION

Facts = dict[str, object]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "KMP_AFFINITY",
    "OMP_PROC_BIND",
    "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTORCH_CUDA_ALLOC_CONF",
)
"""Environment variables that change how many threads or which devices run the work."""

ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "neon")
"""CPU features that decide which kernels the libraries pick (from /proc/cpuinfo)."""

_TIMEOUT_S = 3.0


def _run(args: list[str], cwd: Path | None = None) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _missing(reason: str, *keys: str) -> Facts:
    return {**dict.fromkeys(keys), "reason": reason}


# --- sections ------------------------------------------------------------------------------


def _deconvbench() -> Facts:
    root = Path(__file__).resolve().parents[1]
    facts: Facts = {"version": VERSION, "path": str(Path(__file__).resolve().parent)}
    # The checkout must be deconvbench's own: an installed copy can sit inside some other
    # repository (a project's venv), whose revision would say nothing about this code.
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd=root)
    own = top is not None and Path(top).resolve() == root
    revision = _run(["git", "rev-parse", "HEAD"], cwd=root) if own else None
    if revision is None:
        facts.update(git_revision=None, git_dirty=None, reason="not a git checkout")
        return facts
    # Only tracked files count: a stray results CSV should not mark the code as modified.
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    facts.update(git_revision=revision, git_dirty=None if status is None else bool(status))
    return facts


def _python() -> Facts:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def _os() -> Facts:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (Linux), else empty."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def _cpu_model(info: dict[str, str]) -> str | None:
    model = info.get("model name") or info.get("Model") or info.get("Hardware")
    if not model and sys.platform == "darwin":
        model = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return model or platform.processor() or None


def _cpu() -> Facts:
    import psutil

    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    freq = None
    try:
        f = psutil.cpu_freq()
        freq = round(f.max or f.current) if f else None
    except (OSError, NotImplementedError, AttributeError):
        pass
    governor = None
    with contextlib.suppress(OSError):  # no cpufreq in most VMs and containers
        governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    try:
        load = round(psutil.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load = None
    return {
        "model": _cpu_model(info),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable,
        "max_mhz": freq,
        "governor": governor,
        "isa": [f for f in ISA_FLAGS if f in flags] if flags else None,
        "load_1m": load,
    }


def _memory() -> Facts:
    import psutil

    vm = psutil.virtual_memory()
    return {"total_gb": round(vm.total / 2**30, 1), "available_gb": round(vm.available / 2**30, 1)}


def _numpy() -> Facts:
    import numpy as np

    blas = None
    try:  # numpy >= 1.26 reports the BLAS it was built against
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dep.get('name')} {dep.get('version') or ''}".strip()
    except Exception:
        pass
    return {"version": np.__version__, "blas": blas}


def _threadpools() -> Facts:
    """Every native thread pool loaded in this process (numpy's BLAS, torch's OpenMP, MKL...).

    Together they decide how many cores a CPU strategy really uses. Probed after torch and
    numba are imported so that their pools are loaded and listed too.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return _missing("threadpoolctl is not installed", "pools")
    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return {"pools": [{k: pool.get(k) for k in keep} for pool in threadpool_info()]}


def _build_settings(config: str) -> dict[str, str]:
    """The ``KEY=value`` pairs of torch's "Build settings:" line that matter for speed."""
    match = re.search(r"Build settings: (.*)", config)
    if not match:
        return {}
    wanted = {"BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "USE_CUDNN"}
    pairs = (item.strip().partition("=") for item in match.group(1).split(", "))
    return {k: v for k, _, v in pairs if k in wanted}


def _torch() -> Facts:
    try:
        torch = importlib.import_module("torch")
    except ImportError as e:
        return _missing(f"not installed ({e})", "version")
    config = torch.__config__.show()
    isa = re.search(r"CPU capability usage: (\S+)", config)
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "hip_build": getattr(torch.version, "hip", None),
        "cpu_capability": isa.group(1) if isa else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "mkl": bool(torch.backends.mkl.is_available()),
        "openmp": bool(torch.backends.openmp.is_available()),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "build": _build_settings(config),
    }


def _cuda() -> Facts:
    keys = ("available", "devices", "cudnn", "driver")
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return _missing("torch is not installed", *keys)
    if not torch.cuda.is_available():
        why = (
            "this torch is a CPU-only build"
            if torch.version.cuda is None and getattr(torch.version, "hip", None) is None
            else "no CUDA device is visible (driver missing, or CUDA_VISIBLE_DEVICES empty)"
        )
        return {**_missing(why, *keys), "available": False}
    devices = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        devices.append(
            {
                "name": p.name,
                "capability": f"{p.major}.{p.minor}",
                "memory_gb": round(p.total_memory / 2**30, 1),
                "multiprocessors": p.multi_processor_count,
            }
        )
    driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return {
        "available": True,
        "devices": devices,
        "cudnn": torch.backends.cudnn.version(),
        "driver": driver.splitlines()[0] if driver else None,
    }


def _numba() -> Facts:
    try:
        numba = importlib.import_module("numba")
    except ImportError:
        return _missing("not installed (pip install 'deconvbench[numba]')", "version")
    return {
        "version": numba.__version__,
        "threading_layer": numba.config.THREADING_LAYER,
        "num_threads": numba.config.NUMBA_NUM_THREADS,
    }


def _variables() -> Facts:
    return {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}


SECTIONS: dict[str, Callable[[], Facts]] = {
    "deconvbench": _deconvbench,
    "python": _python,
    "os": _os,
    "cpu": _cpu,
    "memory": _memory,
    "numpy": _numpy,
    "torch": _torch,
    "cuda": _cuda,
    "numba": _numba,
    "threadpools": _threadpools,
    "variables": _variables,
}


def collect() -> dict[str, object]:
    """Every section of facts; a section whose probe fails carries the error as its reason."""
    facts: dict[str, object] = {"collected_at": datetime.now(UTC).isoformat(timespec="seconds")}
    for name, probe in SECTIONS.items():
        try:
            facts[name] = probe()
        except Exception as e:  # a probe must never cost the user their run
            facts[name] = {"reason": f"could not be probed: {type(e).__name__}: {e}"}
    return facts


def summary(facts: dict[str, object]) -> str:
    """One line for run headers: CPU, cores, BLAS, torch, GPU."""

    def get(section: str, key: str) -> object:
        value = facts.get(section)
        return value.get(key) if isinstance(value, dict) else None

    parts = [str(get("cpu", "model") or "unknown CPU")]
    cores = get("cpu", "usable_cores")
    if cores:
        parts.append(f"{cores} cores")
    if get("numpy", "blas"):
        parts.append(f"numpy {get('numpy', 'version')} ({get('numpy', 'blas')})")
    if get("torch", "version"):
        parts.append(f"torch {get('torch', 'version')}")
    devices = get("cuda", "devices")
    if isinstance(devices, list) and devices:
        names = sorted({str(d.get("name")) for d in devices if isinstance(d, dict)})
        parts.append(f"{len(devices)}x {', '.join(names)}")
    return " · ".join(parts)
