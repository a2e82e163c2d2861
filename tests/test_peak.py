"""Peak GEMM calibration."""

from __future__ import annotations

import math
import time

import pytest

from deconvbench.env import peak as env_peak
from deconvbench.env.peak import TheoreticalPeak
from deconvbench.harness import peak


def test_cpu_calibration_is_short_and_positive() -> None:
    start = time.perf_counter()
    peaks = peak.calibrate_peaks({"cpu"}, {"float32", "float64"}, threads=1)
    elapsed = time.perf_counter() - start
    assert set(peaks) == {("cpu", "float32"), ("cpu", "float64")}
    assert all(math.isfinite(v) and v > 0.1 for v in peaks.values())
    assert elapsed < 5.0  # < 2 s on an idle machine; slack for a shared CI runner


def test_gemm_rate_units_and_best_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """2·n³ flops in t seconds is 2·n³/t/1e9 GFLOP/s; the better of numpy and torch is kept.

    Timings are replaced by fixed ones, so the arithmetic is checked, not the machine.
    """
    monkeypatch.setattr(peak, "_numpy_runner", lambda n, dtype: lambda: 2 * n**3 / 100e9)
    monkeypatch.setattr(peak, "_torch_runner", lambda n, dtype, device: lambda: 2 * n**3 / 150e9)
    monkeypatch.setattr(peak, "_conv_runner", lambda n, dtype: lambda: peak._conv_flops(n) / 1e9)
    assert peak.gemm_rate("cpu", "float32") == pytest.approx(150.0)
    assert peak.gemm_rate("cpu", "bfloat16") == pytest.approx(150.0)  # torch only
    monkeypatch.setattr(peak, "_torch_runner", lambda n, dtype, device: lambda: 2 * n**3 / 50e9)
    assert peak.gemm_rate("cpu", "float64") == pytest.approx(100.0)


def test_unmeasurable_pairs_are_left_out_with_a_reason() -> None:
    peaks, failures = peak.calibrate_peaks_with_reasons({"tpu"}, {"float32"})
    assert peaks == {}
    assert "tpu" in failures[("tpu", "float32")]


def test_peak_fraction() -> None:
    assert peak.peak_fraction(50.0, 200.0) == 0.25
    assert peak.peak_fraction(None, 200.0) is None
    assert peak.peak_fraction(50.0, None) is None
    assert peak.peak_fraction(50.0, 0.0) is None


def test_peaks_as_facts() -> None:
    facts = peak.peaks_as_facts({("cpu", "float64"): 2.0, ("cpu", "float32"): 4.0})
    assert facts == {"cpu/float32": 4.0, "cpu/float64": 2.0}


@pytest.mark.cuda
def test_cuda_calibration_keeps_tf32_setting() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    before = torch.backends.cuda.matmul.allow_tf32
    peaks = peak.calibrate_peaks({"cuda"}, {"float32", "bfloat16"})
    assert torch.backends.cuda.matmul.allow_tf32 == before
    assert peaks[("cuda", "bfloat16")] > peaks[("cuda", "float32")] > 100.0


def test_conv_runner_counts_its_flops(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 on the CPU takes the best of numpy, torch's matmul and oneDNN's convolution."""
    monkeypatch.setattr(peak, "_numpy_runner", lambda n, dtype: lambda: 2 * n**3 / 100e9)
    monkeypatch.setattr(peak, "_torch_runner", lambda n, dtype, device: lambda: 2 * n**3 / 150e9)
    monkeypatch.setattr(peak, "_conv_runner", lambda n, dtype: lambda: peak._conv_flops(n) / 180e9)
    assert peak.gemm_rate("cpu", "float32") == pytest.approx(180.0)
    assert peak.gemm_rate("cpu", "float64") == pytest.approx(150.0)  # no convolution
    assert peak._conv_flops(128) == 2 * 8 * 32 * 32 * 9 * 28 * 28


def test_the_real_conv_runner_runs() -> None:
    pytest.importorskip("torch")
    assert 0 < peak._conv_runner(128, "float32")() < 1.0


def _theory(gflops: float | None, mhz: float | None = 2000.0) -> TheoreticalPeak:
    return TheoreticalPeak(gflops, "test", cores=2, mhz=mhz, clock_source="test")


def test_the_denominator_is_the_theoretical_peak_unless_below_the_measured_one() -> None:
    pair = ("cpu", "float32")
    cal = peak.Calibration({pair: 100.0}, {pair: _theory(150.0)})
    assert cal.denominator(pair) == (150.0, "theoretical") and cal.peaks == {pair: 150.0}
    low = peak.Calibration({pair: 200.0}, {pair: _theory(150.0)})
    rate, basis = low.denominator(pair)
    assert rate == 200.0 and basis.startswith("measured") and "2667 MHz" in basis
    unknown = peak.Calibration({pair: 90.0}, {pair: _theory(None)})
    assert unknown.denominator(pair)[0] == 90.0
    assert "no theoretical peak" in unknown.denominator(pair)[1]
    neither = peak.Calibration({}, {pair: _theory(None)}, {pair: "boom"})
    assert neither.denominator(pair) == (None, "none: boom") and neither.peaks == {}
    facts = cal.as_facts()
    assert facts["peaks"] == {"cpu/float32": 150.0}
    assert facts["peaks_measured"] == {"cpu/float32": 100.0}
    assert facts["peak_basis"] == {"cpu/float32": "theoretical"}
    assert facts["peaks_theoretical"]["cpu/float32"]["gflops"] == 150.0  # type: ignore[index]


def _cpuinfo(vendor: str, family: str, model: str, flags: str) -> dict[str, str]:
    return {"vendor_id": vendor, "cpu family": family, "model": model, "flags": flags}


@pytest.mark.parametrize(
    ("info", "lanes"),
    [
        (_cpuinfo("AuthenticAMD", "25", "17", "fma avx2 avx512f"), 16),  # Zen 4: 2 x 512 / 2
        (_cpuinfo("AuthenticAMD", "25", "1", "fma avx2"), 16),  # Zen 3
        (_cpuinfo("AuthenticAMD", "23", "1", "fma avx2"), 8),  # Zen 1: 2 x 128
        (_cpuinfo("GenuineIntel", "6", "143", "fma avx2 avx512f"), 32),  # 2 x 512
        (_cpuinfo("GenuineIntel", "6", "60", "fma avx2"), 16),  # Haswell
    ],
)
def test_theoretical_peak_from_the_isa_and_the_fma_table(
    monkeypatch: pytest.MonkeyPatch, info: dict[str, str], lanes: int
) -> None:
    monkeypatch.setattr(env_peak, "_cpuinfo", lambda: info)
    monkeypatch.setattr(env_peak, "_clock", lambda: (3000.0, "psutil.cpu_freq max"))
    monkeypatch.setattr(env_peak, "_physical_cores", lambda threads: threads)
    p = env_peak.theoretical_peak("cpu", "float32", 4)
    assert p.gflops == pytest.approx(4 * 3.0 * lanes * 2)
    assert p.clock_source == "psutil.cpu_freq max"
    double = env_peak.theoretical_peak("cpu", "float64", 4)
    assert double.gflops == pytest.approx(4 * 3.0 * lanes)


def test_theoretical_peak_unknown_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env_peak, "_cpuinfo", lambda: _cpuinfo("ARM", "8", "1", "neon"))
    assert "AVX" in env_peak.theoretical_peak("cpu", "float32", 2).reason
    monkeypatch.setattr(
        env_peak, "_cpuinfo", lambda: _cpuinfo("HygonGenuine", "24", "1", "fma avx2")
    )
    unknown = env_peak.theoretical_peak("cpu", "float32", 2)
    assert unknown.gflops is None and "HygonGenuine" in unknown.reason
    assert env_peak.theoretical_peak("cuda", "float32", 1).gflops is None
    assert env_peak.theoretical_peak("cpu", "bfloat16", 1).gflops is None
    monkeypatch.setattr(
        env_peak, "_cpuinfo", lambda: _cpuinfo("AuthenticAMD", "25", "17", "fma avx2")
    )
    monkeypatch.setattr(env_peak, "_clock", lambda: (None, "no clock"))
    assert env_peak.theoretical_peak("cpu", "float32", 2).reason == "no clock"


def test_theoretical_peak_here_is_none_or_positive() -> None:
    p = env_peak.theoretical_peak("cpu", "float32", 1)
    assert p.gflops is None or (p.gflops > 0 and p.clock_source)
