"""How much memory there is, and sizes as text: the one source for ``run``'s memory guard
(``run/footprint.py``) and the Python API's (``api.py``)."""

from __future__ import annotations

import psutil


def format_bytes(n: float) -> str:
    """``3.2 GiB``, ``512 MiB``, ``12 KiB``: binary units, two or three significant digits."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def available_ram() -> int:
    """Host memory available to new allocations now (psutil: without swapping)."""
    return int(psutil.virtual_memory().available)


def total_ram() -> int:
    return int(psutil.virtual_memory().total)


def free_gpu_memory() -> int:
    """Free memory of the current CUDA device, as the driver reports it."""
    import torch  # only reached for a CUDA strategy

    free, _total = torch.cuda.mem_get_info()
    return int(free)
