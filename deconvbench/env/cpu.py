"""The CPU: model, cores, frequency, vector extensions and caches."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path

from .probe import Facts, run

ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "neon",
    "asimd", "sve",
)  # fmt: skip
"""CPU features that decide which kernels the libraries pick (from /proc/cpuinfo)."""

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
        model = run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return model or platform.processor() or None


def cache_kb(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, int]:
    """Cache sizes of cpu0 in KiB by level ("L1d", "L2", "L3"), from sysfs; empty elsewhere."""
    sizes: dict[str, int] = {}
    for index in sorted(root.glob("index*")):
        with contextlib.suppress(OSError, ValueError):
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
            suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
            sizes[f"L{level}{suffix}"] = int(size.removesuffix("K"))  # the kernel writes KiB
    return sizes


def cpu() -> Facts:
    import psutil

    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    usable = os.cpu_count()
    with contextlib.suppress(AttributeError, OSError):  # no affinity on macOS and Windows
        usable = len(os.sched_getaffinity(0))
    freq = None
    with contextlib.suppress(OSError, NotImplementedError, AttributeError):
        f = psutil.cpu_freq()
        freq = round(f.max or f.current) if f else None
    governor = None
    with contextlib.suppress(OSError):  # no cpufreq in most VMs and containers
        governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = round(psutil.getloadavg()[0], 2)
    return {
        "model": _cpu_model(info),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable,
        "max_mhz": freq,
        "governor": governor,
        "isa": [f for f in ISA_FLAGS if f in flags] if flags else None,
        "vendor": info.get("vendor_id") or info.get("CPU implementer"),
        "family": info.get("cpu family") or info.get("CPU architecture"),
        "model_number": info.get("model") or info.get("CPU part"),
        "stepping": info.get("stepping") or info.get("CPU variant"),
        "microcode": info.get("microcode"),
        "cache_kb": cache_kb(),
        "load_1m": load,
    }
