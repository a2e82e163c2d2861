"""The machine's dense matrix-multiply rate per (device, dtype): the denominator of % of peak.

Dense GEMM is the best a real workload gets from the hardware, and every fast deconvolution
strategy reduces to it, so it is a fairer ceiling than a datasheet's FLOP rate (which assumes
perfect clocks and no memory traffic). Per (device, dtype): square products of a few sizes,
each best of a few runs, the best rate kept; short (well under 2 s on a CPU), and run under
the same thread setting as the benchmark so the fraction compares like with like.

* cpu float32: the best of numpy's matmul (its BLAS, the one numpy strategies use), torch's
  (MKL here) and a large 3x3 convolution by torch (oneDNN, which takes the AVX-512 path that
  OpenBLAS forced to Haswell kernels or MKL on AMD miss: torch's deconvolutions use it too);
* cpu float64: the better of numpy's matmul and torch's;
* cpu float16/bfloat16: torch's matmul (numpy has no bfloat16 and no fast float16);
* cuda: torch's matmul with TF32 off (float32 stays IEEE float32, as the strategies do),
  timed with CUDA events.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..env.peak import TheoreticalPeak, theoretical_peak
from .threads import limit_threads

CPU_SIZES = (128, 256, 512, 1024)
CUDA_SIZES = (2048, 4096, 8192)
CPU_RUNS, CUDA_RUNS = 3, 10
CPU_BUDGET_S, CUDA_BUDGET_S = 0.45, 1.0
CONV_BATCH, CONV_SPATIAL = 8, 30
"""The convolution runner: batch 8, 30x30 inputs, 3x3 kernel without padding (every product
reaches the output), channels n // 4 for GEMM size n."""
"""Time allowed per (device, dtype); a larger size is tried only if it is predicted to fit.
A GPU gets more runs: its clocks ramp up from idle over the first products."""


def _numpy_runner(n: int, dtype: str) -> Callable[[], float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)  # first call: BLAS thread pool start-up, page faults

    def run() -> float:
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        return time.perf_counter() - t0

    return run


def _conv_flops(n: int) -> float:
    channels, out = n // 4, CONV_SPATIAL - 2
    return 2.0 * CONV_BATCH * channels * channels * 9 * out * out


def _conv_runner(n: int, dtype: str) -> Callable[[], float]:
    """A float32 convolution on the CPU by torch (oneDNN), as large as a GEMM of size n."""
    import torch
    from torch.nn import functional

    channels = n // 4
    gen = torch.Generator().manual_seed(0)
    tdtype = getattr(torch, dtype)
    x = torch.randn((CONV_BATCH, channels, CONV_SPATIAL, CONV_SPATIAL), generator=gen).to(tdtype)
    w = torch.randn((channels, channels, 3, 3), generator=gen).to(tdtype)
    with torch.no_grad():
        functional.conv2d(x, w)  # first call: oneDNN's kernel selection and JIT

    def run() -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            functional.conv2d(x, w)
            return time.perf_counter() - t0

    return run


def _torch_runner(n: int, dtype: str, device: str) -> Callable[[], float]:
    import torch

    tdtype = getattr(torch, dtype)
    # Drawn on the device itself: drawing 8192² values on the host would cost more than the
    # whole calibration.
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((n, n), generator=gen, device=device).to(tdtype)
    b = torch.randn((n, n), generator=gen, device=device).to(tdtype)
    out = torch.matmul(a, b)
    if device == "cpu":

        def run_cpu() -> float:
            t0 = time.perf_counter()
            torch.matmul(a, b, out=out)
            return time.perf_counter() - t0

        return run_cpu

    for _ in range(3):  # library heuristics, clocks leaving idle
        torch.matmul(a, b, out=out)
    torch.cuda.synchronize()

    def run_cuda() -> float:
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        torch.matmul(a, b, out=out)
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3

    return run_cuda


def gemm_rate(device: str, dtype: str, budget_s: float | None = None) -> float:
    """Best dense GEMM GFLOP/s for (device, dtype); raises when the pair cannot run."""
    sizes: tuple[int, ...]
    if device == "cpu":
        sizes, runs, budget = CPU_SIZES, CPU_RUNS, CPU_BUDGET_S
        libraries = {"float32": ("numpy", "torch", "conv"), "float64": ("numpy", "torch")}.get(
            dtype, ("torch",)
        )
    elif device.startswith("cuda"):
        sizes, runs, budget = CUDA_SIZES, CUDA_RUNS, CUDA_BUDGET_S
        libraries = ("torch",)
    else:
        raise ValueError(f"no GEMM calibration for device {device!r}")
    share = (budget if budget_s is None else budget_s) / len(libraries)  # an equal share each
    return max(_best_rate(library, device, dtype, sizes, runs, share) for library in libraries)


def _best_rate(
    library: str, device: str, dtype: str, sizes: tuple[int, ...], runs: int, budget_s: float
) -> float:
    deadline = time.perf_counter() + budget_s
    best = 0.0
    for n in sizes:
        if library == "numpy":
            run = _numpy_runner(n, dtype)
        elif library == "conv":
            run = _conv_runner(n, dtype)
        else:
            run = _torch_runner(n, dtype, device)
        flops = _conv_flops(n) if library == "conv" else 2.0 * n**3
        fastest = math.inf
        for _ in range(runs):
            fastest = min(fastest, run())
            if time.perf_counter() > deadline:
                break
        if fastest > 0:
            best = max(best, flops / fastest / 1e9)
        # The next size does 8x the work per run: try it only if its runs fit the budget.
        if time.perf_counter() + 8 * runs * fastest > deadline:
            break
    return best


def _without_tf32() -> Callable[[], None]:
    """Turn TF32 off for CUDA matmuls; returns the function restoring the previous setting."""
    import torch

    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False

    def restore() -> None:
        torch.backends.cuda.matmul.allow_tf32 = previous

    return restore


def calibrate_peaks(
    devices: Iterable[str], dtypes: Iterable[str], threads: int | None = None
) -> dict[tuple[str, str], float]:
    """GFLOP/s of dense GEMM for every (device, dtype) pair that can run here.

    A pair that cannot be measured (no CUDA, no torch, a dtype the device lacks) is left
    out rather than failing the run: its rows get no ``peak_fraction``;
    :func:`calibrate_peaks_with_reasons` also says why.
    """
    peaks, _ = calibrate_peaks_with_reasons(devices, dtypes, threads)
    return peaks


def calibrate_peaks_with_reasons(
    devices: Iterable[str], dtypes: Iterable[str], threads: int | None = None
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], str]]:
    """Like :func:`calibrate_peaks`, also returning why each missing pair failed."""
    peaks: dict[tuple[str, str], float] = {}
    failures: dict[tuple[str, str], str] = {}
    dtype_list = sorted(set(dtypes))
    with limit_threads(threads) as applied:
        for device in sorted(set(devices)):
            for dtype in dtype_list:
                try:
                    peaks[device, dtype] = _calibrate_pair(device, dtype, applied.count)
                except Exception as exc:  # one pair failing must not stop the run
                    failures[device, dtype] = f"{type(exc).__name__}: {exc}"
    return peaks, failures


def _calibrate_pair(device: str, dtype: str, threads: int) -> float:
    """The best rate of one pair: on the CPU, with all the threads and with one.

    A machine shared with other work can stall a multi-threaded BLAS for a whole
    calibration (a thread descheduled while the others spin-wait for it): rates 100x too
    low were seen on a busy 2-core box. One thread is never faster than several on a
    healthy machine, so taking the better of the two reads is the best rate the machine
    demonstrably reaches with at most ``threads`` threads, and it resists that collapse.
    """
    if device.startswith("cuda"):
        restore = _without_tf32()
        try:
            rate = gemm_rate(device, dtype)
        finally:
            restore()
    else:
        rate = gemm_rate(device, dtype)
        if threads > 1:
            with limit_threads(1):
                rate = max(rate, gemm_rate(device, dtype))
    if not math.isfinite(rate) or rate <= 0:
        raise RuntimeError(f"measured no usable rate ({rate})")
    return rate


def peak_fraction(gflops: float | None, peak: float | None) -> float | None:
    """``gflops / peak``, or None when either is unknown."""
    if gflops is None or peak is None or peak <= 0 or not math.isfinite(gflops):
        return None
    return gflops / peak


def peaks_as_facts(peaks: dict[tuple[str, str], float]) -> dict[str, float]:
    """JSON-friendly form for the sidecar: ``{"cpu/float32": GFLOP/s, ...}``."""
    return {f"{device}/{dtype}": rate for (device, dtype), rate in sorted(peaks.items())}


Pair = tuple[str, str]


@dataclass(frozen=True)
class Calibration:
    """Both peaks of every (device, dtype), and the one ``peak_fraction`` divides by.

    The denominator is the theoretical peak when it is known and at least the measured one;
    else the measured one. A theoretical figure below a measured rate is not a bound: its
    clock was understated (a VM's /proc/cpuinfo gives the nominal clock, the cores boost).
    """

    measured: dict[Pair, float]
    theoretical: dict[Pair, TheoreticalPeak]
    failures: dict[Pair, str] = field(default_factory=dict)

    def denominator(self, pair: Pair) -> tuple[float | None, str]:
        """(GFLOP/s, basis): which peak ``peak_fraction`` divides by, and why."""
        measured = self.measured.get(pair)
        theory = self.theoretical.get(pair)
        rate = theory.gflops if theory is not None else None
        if rate is not None and (measured is None or rate >= measured):
            return rate, "theoretical"
        if measured is None:
            return None, "none: " + self.failures.get(pair, "no peak")
        if rate is None:
            why = theory.reason if theory is not None else "not computed"
            return measured, f"measured: no theoretical peak ({why})"
        clock = f"{theory.mhz:.0f} MHz from {theory.clock_source}" if theory else "?"
        implied = f"{theory.mhz * measured / rate:.0f} MHz" if theory and theory.mhz else "?"
        return measured, (
            f"measured: the theoretical {rate:.1f} GFLOP/s (at {clock}) is below it, so the "
            f"cores ran above that clock (the measured rate implies at least {implied})"
        )

    @property
    def peaks(self) -> dict[Pair, float]:
        """The denominators of ``peak_fraction`` (pairs with none left out)."""
        pairs = set(self.measured) | set(self.theoretical)
        chosen = {pair: self.denominator(pair)[0] for pair in pairs}
        return {pair: rate for pair, rate in chosen.items() if rate is not None}

    def as_facts(self) -> dict[str, object]:
        """The sidecar's peak facts (docs/csv-schema.md)."""
        pairs = sorted(set(self.measured) | set(self.theoretical) | set(self.failures))
        return {
            "peaks": peaks_as_facts(self.peaks),
            "peak_basis": {f"{d}/{t}": self.denominator((d, t))[1] for d, t in pairs},
            "peaks_measured": peaks_as_facts(self.measured),
            "peaks_theoretical": {
                f"{d}/{t}": p.as_fact() for (d, t), p in sorted(self.theoretical.items())
            },
            "peak_failures": {f"{d}/{t}": why for (d, t), why in self.failures.items()},
        }


def theoretical_peaks(
    devices: Iterable[str], dtypes: Iterable[str], threads: int | None = None
) -> dict[Pair, TheoreticalPeak]:
    """The theoretical peak of every pair at the run's thread count (``env.peak``)."""
    with limit_threads(threads) as applied:
        count = applied.count
    return {
        (d, t): theoretical_peak(d, t, count)
        for d in sorted(set(devices))
        for t in sorted(set(dtypes))
    }


def calibrate(
    devices: Iterable[str], dtypes: Iterable[str], threads: int | None = None
) -> Calibration:
    """Both peaks of every pair: measured (:func:`calibrate_peaks_with_reasons`) and
    theoretical (:func:`theoretical_peaks`)."""
    device_set, dtype_set = set(devices), set(dtypes)
    measured, failures = calibrate_peaks_with_reasons(device_set, dtype_set, threads)
    return Calibration(measured, theoretical_peaks(device_set, dtype_set, threads), failures)
