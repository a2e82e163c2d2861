"""The CPU's theoretical FLOP rate: cores × clock × FMA units × vector lanes × 2.

A datasheet-style upper bound, derived from what the machine says about itself:

* vector width from the ISA flags (``avx512f``: 512 bits, ``avx2`` + ``fma``: 256);
* FMA units per core and their width from :data:`FMA_TABLE`, by vendor and family. A unit
  narrower than the ISA's vectors executes them in several passes (Zen 4 runs AVX-512 on
  two 256-bit pipes: 2 × 512 / 2 bits of FMA per cycle);
* the clock: psutil's ``cpu_freq().max`` when the OS reports one (the boost clock), else
  ``cpu MHz`` of /proc/cpuinfo (in a VM, the nominal clock: the cores may boost above it,
  so the figure can be below what a GEMM reaches; ``harness.peak`` then keeps the measured
  rate, and says so);
* cores: the run's threads, at most the physical cores (SMT siblings share FMA units).

Anything unknown (another vendor or family, no FMA, a GPU, half precision) gives None with
the reason.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

from .cpu import _cpuinfo

FMA_TABLE: tuple[tuple[str, str, str, int, int], ...] = (
    # vendor, family, which cores, FMA units per core, bits per unit
    ("AuthenticAMD", "23", "Zen 1 (model < 0x30): 2 × 128-bit FMA", 2, 128),
    ("AuthenticAMD", "23", "Zen 2 (model >= 0x30): 2 × 256-bit FMA", 2, 256),
    ("AuthenticAMD", "25", "Zen 3/Zen 4: 2 × 256-bit FMA (Zen 4 AVX-512 double-pumped)", 2, 256),
    ("AuthenticAMD", "26", "Zen 5: 2 × 512-bit FMA (desktop/server)", 2, 512),
    ("GenuineIntel", "6", "Intel AVX-512 server cores: 2 × 512-bit FMA", 2, 512),
    ("GenuineIntel", "6", "Intel AVX2 cores (Haswell on): 2 × 256-bit FMA", 2, 256),
)
"""FMA units per core and their width, by vendor and /proc/cpuinfo ``cpu family``. Some
parts have less (Intel SKUs with one 512-bit unit, mobile Zen 5): the figure is then above
the true one, which keeps it an upper bound."""

BITS = {"float32": 32, "float64": 64}


@dataclass(frozen=True)
class TheoreticalPeak:
    """GFLOP/s (None when unknown), the inputs it came from, and how (or why not)."""

    gflops: float | None
    reason: str
    cores: int | None = None
    mhz: float | None = None
    clock_source: str | None = None
    fma_units: int | None = None
    fma_bits: int | None = None
    vector_bits: int | None = None

    def as_fact(self) -> dict[str, object]:
        return asdict(self)


def _fma_row(vendor: str, family: str, model: int, avx512: bool) -> tuple[str, int, int] | None:
    rows = [(what, n, bits) for v, f, what, n, bits in FMA_TABLE if (v, f) == (vendor, family)]
    if not rows:
        return None
    if vendor == "AuthenticAMD" and family == "23":
        return rows[0] if model < 0x30 else rows[1]
    if vendor == "GenuineIntel":
        return rows[0] if avx512 else rows[1]
    return rows[0]


def _clock() -> tuple[float | None, str]:
    import psutil

    with contextlib.suppress(OSError, NotImplementedError, AttributeError):
        freq = psutil.cpu_freq()
        if freq and freq.max > 0:
            return float(freq.max), "psutil.cpu_freq max"
    mhz = _cpuinfo().get("cpu MHz")
    with contextlib.suppress(TypeError, ValueError):
        return float(str(mhz)), "/proc/cpuinfo cpu MHz (current or nominal; boost may exceed it)"
    return None, "no clock: psutil.cpu_freq has no max and /proc/cpuinfo no cpu MHz"


def _physical_cores(threads: int) -> int:
    import psutil

    physical = psutil.cpu_count(logical=False)
    return min(threads, physical) if physical else threads


def theoretical_peak(device: str, dtype: str, threads: int) -> TheoreticalPeak:
    """The theoretical GFLOP/s of ``threads`` cores for (device, dtype), or why unknown."""
    if device != "cpu":
        return TheoreticalPeak(None, f"no table of theoretical rates for {device}")
    if dtype not in BITS:
        return TheoreticalPeak(None, f"no theoretical rate for {dtype} (float32/float64 only)")
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    vendor, family = info.get("vendor_id", ""), info.get("cpu family", "")
    if "avx512f" in flags:
        vector_bits = 512
    elif {"avx2", "fma"} <= flags:
        vector_bits = 256
    else:
        return TheoreticalPeak(None, "no AVX2+FMA or AVX-512 in /proc/cpuinfo flags")
    try:
        model = int(info.get("model", "0"))
    except ValueError:
        model = 0
    row = _fma_row(vendor, family, model, vector_bits == 512)
    if row is None:
        return TheoreticalPeak(None, f"no FMA table entry for {vendor or '?'} family {family}")
    what, units, unit_bits = row
    mhz, source = _clock()
    if mhz is None:
        return TheoreticalPeak(None, source, fma_units=units, fma_bits=unit_bits)
    cores = _physical_cores(threads)
    lanes = units * min(unit_bits, vector_bits) // BITS[dtype]  # FMAs per cycle per core
    gflops = cores * mhz * 1e-3 * lanes * 2
    return TheoreticalPeak(
        gflops,
        f"{cores} cores × {mhz:.0f} MHz × {lanes} {dtype} FMAs/cycle × 2 ({what})",
        cores, mhz, source, units, unit_bits, vector_bits,
    )  # fmt: skip
