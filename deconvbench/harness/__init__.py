"""The measurement harness: clocks, timing, memory, peak calibration, thread control.

Each module does one job and knows nothing of suites, CSV files or rendering; the runner
(``deconvbench.runner``) strings them together for each (case, strategy, pass).
The function ``measure`` lives in :mod:`deconvbench.harness.measure` and is not re-exported
here, where its name would hide that module.
"""

from __future__ import annotations

from .clocks import Clock, CudaEventClock, FakeClock, PerfCounterClock, clock_for
from .measure import Measurement, Settings
from .memory import MemoryReading, peak_memory
from .peak import calibrate_peaks
from .threads import ThreadSettings, limit_threads

__all__ = [
    "Clock",
    "CudaEventClock",
    "FakeClock",
    "Measurement",
    "MemoryReading",
    "PerfCounterClock",
    "Settings",
    "ThreadSettings",
    "calibrate_peaks",
    "clock_for",
    "limit_threads",
    "peak_memory",
]
