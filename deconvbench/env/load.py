"""The machine's load: how busy other processes keep the CPUs (the run's sidecar, ``load``).

Read before the first measurement and at the end of a run, so a reader can tell a run made
beside other work from one on a quiet machine (rows that were disturbed also say so:
``harness/interference.py``).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

WINDOW_S = 0.25
"""How long other processes' CPU use is watched for."""
BUSIEST = 3


def snapshot(window_s: float = WINDOW_S) -> dict[str, object]:
    """``loadavg`` (1, 5, 15 min), ``cores``, and over ``window_s``: ``others_busy_cores``
    (CPUs kept busy by every process but this one), ``others_busy_fraction`` (of ``cores``)
    and the ``busiest`` other processes (``pid``, ``name``, ``cpu_percent``, 100 = one core).
    Never raises: what cannot be read is null, with a ``reason``."""
    import psutil

    facts: dict[str, object] = {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window_s": window_s,
        "cores": psutil.cpu_count(logical=True),
    }
    try:
        facts["loadavg"] = [round(v, 2) for v in psutil.getloadavg()]
    except (OSError, AttributeError) as exc:
        facts["loadavg"] = None
        facts["reason"] = f"loadavg: {exc}"
    try:
        facts.update(_others(window_s))
    except (psutil.Error, OSError) as exc:
        facts.update(others_busy_cores=None, others_busy_fraction=None, busiest=[])
        facts["reason"] = f"cpu use: {exc}"
    return facts


def _others(window_s: float) -> dict[str, object]:
    import psutil

    def cpu_s(p: psutil.Process) -> float | None:
        try:
            t = p.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        return float(t.user + t.system)

    me = os.getpid()
    procs = {p.pid: p for p in psutil.process_iter() if p.pid != me}
    before = {pid: cpu_s(p) for pid, p in procs.items()}
    system_before, own_before = psutil.cpu_times(), time.process_time()
    start = time.perf_counter()
    time.sleep(window_s)
    wall = time.perf_counter() - start
    system_after, own = psutil.cpu_times(), time.process_time() - own_before
    busy = sum(
        getattr(system_after, f) - getattr(system_before, f)
        for f in ("user", "system", "nice", "irq", "softirq", "steal")
        if hasattr(system_after, f)
    )
    others = max(busy - own, 0.0) / wall
    shares = []
    for pid, p in procs.items():
        start_s, end_s = before.get(pid), cpu_s(p)
        if start_s is None or end_s is None or end_s <= start_s:
            continue
        try:
            name = p.name()
        except psutil.Error:
            name = "?"
        shares.append(
            {"pid": pid, "name": name, "cpu_percent": round(100 * (end_s - start_s) / wall, 1)}
        )
    shares.sort(key=lambda s: -float(str(s["cpu_percent"])))
    cores = psutil.cpu_count(logical=True) or 1
    return {
        "others_busy_cores": round(others, 3),
        "others_busy_fraction": round(others / cores, 3),
        "busiest": shares[:BUSIEST],
    }
