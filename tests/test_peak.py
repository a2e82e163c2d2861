"""Peak GEMM calibration."""

from __future__ import annotations

import math
import time

import pytest

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
