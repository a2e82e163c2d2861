"""The libraries that run the work: numpy and its BLAS, torch and oneDNN, CUDA, numba, and
every native thread pool loaded."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import tempfile
from pathlib import Path

from .probe import Facts, guarded, missing, run


def numpy() -> Facts:
    import numpy as np
    from threadpoolctl import threadpool_info

    blas = None
    with contextlib.suppress(Exception):  # numpy >= 1.26 reports the BLAS it was built against
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dep.get('name')} {dep.get('version') or ''}".strip()
    # The BLAS as loaded: file, core type its kernels were picked for, threads. A wheel's sits in
    # numpy.libs/ or numpy/.libs/ (both start with numpy's folder); a system numpy's is alone.
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    own = [p for p in pools if str(p.get("filepath")).startswith(str(Path(np.__file__).parent))]
    pool = (own or (pools if len(pools) == 1 else [{}]))[0]
    keys = ("filepath", "internal_api", "version", "architecture", "num_threads")
    names = ("blas_library", "blas_api", "blas_version", "blas_coretype", "blas_threads")
    loaded = dict(zip(names, (pool.get(k) for k in keys), strict=True))
    return {"version": np.__version__, "blas": blas, **loaded}


def threadpools() -> Facts:
    """Every native thread pool loaded in this process (numpy's BLAS, torch's OpenMP, MKL...).

    Together they decide how many cores a CPU strategy really uses. Probed after torch and
    numba are imported so that their pools are loaded and listed too.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return missing("threadpoolctl is not installed", "pools")
    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return {"pools": [{k: pool.get(k) for k in keep} for pool in threadpool_info()]}


def build_settings(config: str) -> dict[str, str]:
    """The ``KEY=value`` pairs of torch's "Build settings:" line that matter for speed."""
    match = re.search(r"Build settings: (.*)", config)
    if not match:
        return {}
    wanted = {"BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "USE_CUDNN"}
    pairs = (item.strip().partition("=") for item in match.group(1).split(", "))
    return {k: v for k, _, v in pairs if k in wanted}


def torch() -> Facts:
    try:
        torch = importlib.import_module("torch")
    except ImportError as e:
        return missing(f"not installed ({e})", "version")
    config = torch.__config__.show()
    isa = re.search(r"CPU capability usage: (\S+)", config)
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "hip_build": getattr(torch.version, "hip", None),
        "cpu_capability": capability() if capability else isa.group(1) if isa else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "onednn": guarded(onednn) if torch.backends.mkldnn.is_available() else None,
        "mkl": bool(torch.backends.mkl.is_available()),
        "openmp": bool(torch.backends.openmp.is_available()),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "build": build_settings(config),
    }


def onednn_header(text: str) -> Facts:
    """version, isa, runtime and threads from oneDNN's verbose header lines, if any."""
    facts: Facts = {}
    header = (("version", r"oneDNN v(\S+)"), ("isa", r"cpu,isa:(.+)"),
              ("runtime", r"cpu,runtime:([^,\n]+)"), ("threads", r"cpu,.*nthr:(\d+)"))  # fmt: skip
    for key, pattern in header:
        if found := re.search(rf"^(?:onednn|dnnl)_verbose,(?:v\d+,)?info,{pattern}", text, re.M):
            facts[key] = int(found[1]) if key == "threads" else found[1].strip()
    return facts


@functools.cache
def onednn() -> Facts:
    """The ISA oneDNN dispatches to, as oneDNN prints it (once a process, hence the cache) in
    its verbose header: one tiny reorder (< 1 ms) with verbose on and fd 1 sent to a file."""
    torch = importlib.import_module("torch")
    saved = os.dup(1)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                torch.zeros(1).to_mkldnn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    # Other writes to fd 1 meanwhile go on to it; oneDNN's lines only where the user asks for them.
    asked = bool(os.environ.get("ONEDNN_VERBOSE") or os.environ.get("DNNL_VERBOSE"))
    os.write(1, "".join(s for s in text.splitlines(True) if asked or "_verbose," not in s).encode())
    facts = onednn_header(text)
    return facts if "isa" in facts else {**facts, "reason": "oneDNN printed no ISA line"}


def cuda() -> Facts:
    keys = ("available", "devices", "cudnn", "driver")
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return missing("torch is not installed", *keys)
    if not torch.cuda.is_available():
        why = (
            "this torch is a CPU-only build"
            if torch.version.cuda is None and getattr(torch.version, "hip", None) is None
            else "no CUDA device is visible (driver missing, or CUDA_VISIBLE_DEVICES empty)"
        )
        return {**missing(why, *keys), "available": False}
    devices = [
        {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "memory_gb": round(p.total_memory / 2**30, 1),
            "multiprocessors": p.multi_processor_count,
        }
        for p in map(torch.cuda.get_device_properties, range(torch.cuda.device_count()))
    ]
    driver = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return {
        "available": True,
        "devices": devices,
        "cudnn": torch.backends.cudnn.version(),
        "driver": driver.splitlines()[0] if driver else None,
    }


def numba() -> Facts:
    try:
        numba = importlib.import_module("numba")
    except ImportError:
        return missing("not installed (pip install 'deconvbench[numba]')", "version")
    return {
        "version": numba.__version__,
        "threading_layer": numba.config.THREADING_LAYER,
        "num_threads": numba.config.NUMBA_NUM_THREADS,
    }


ENGINES = ("onnx", "onnxruntime", "jax", "jaxlib", "openvino")
"""Inference and compiler engines some backends run on; their versions, without importing
them (importing jax starts nothing, but XLA fixes its thread count when it initialises)."""


def engines() -> Facts:
    """The version of every engine package installed here (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: Facts = {}
    for name in ENGINES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
