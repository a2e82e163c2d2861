"""Peak memory of one call."""

from __future__ import annotations

import numpy as np
import pytest

from deconvbench.harness import memory


def test_numpy_allocation_is_seen() -> None:
    def call() -> float:
        a = np.ones(10_000_000)  # 80 MB, freed before the call returns
        return float(a[0])

    reading = memory.peak_memory(call, lambda: None, "cpu")
    assert reading.mb is not None
    assert 79.0 <= reading.mb <= 200.0
    assert "tracemalloc" in reading.method


def test_result_kept_by_the_call_counts_too() -> None:
    reading = memory.peak_memory(lambda: np.zeros(5_000_000), lambda: None, "cpu")
    assert reading.mb is not None and reading.mb >= 39.0


def test_a_call_that_allocates_little_reads_little() -> None:
    x = np.ones(1000)
    reading = memory.peak_memory(lambda: float(x.sum()), lambda: None, "cpu")
    assert reading.mb is not None and reading.mb < 5.0


def test_native_allocations_are_seen_through_the_resident_set() -> None:
    """torch's CPU tensors bypass tracemalloc; the RSS high-water mark still sees them."""
    torch = pytest.importorskip("torch")

    def call() -> float:
        t = torch.ones(25_000_000, dtype=torch.float32)  # 100 MB, touched
        return float(t[0])

    reading = memory.peak_memory(call, lambda: None, "cpu")
    assert reading.mb is not None
    if "VmHWM" not in reading.method:
        pytest.skip("no resettable RSS high-water mark on this system")
    assert reading.mb >= 90.0


def test_memory_that_malloc_kept_from_earlier_calls_is_still_counted() -> None:
    """After a few calls malloc serves 1 MB blocks from pages it kept: trim makes them count."""
    torch = pytest.importorskip("torch")

    def call() -> int:
        blocks = [torch.ones(250_000) for _ in range(40)]  # 40 MB in 1 MB pieces, touched
        return len(blocks)

    for _ in range(3):
        call()
    reading = memory.peak_memory(call, lambda: None, "cpu")
    if "malloc_trim" not in reading.method:
        pytest.skip("no glibc malloc_trim here")
    assert reading.mb is not None and reading.mb >= 35.0


def test_a_failing_call_propagates_and_stops_tracing() -> None:
    import tracemalloc

    def call() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        memory.peak_memory(call, lambda: None, "cpu")
    assert not tracemalloc.is_tracing()


def test_unknown_device_gives_a_reason() -> None:
    reading = memory.peak_memory(lambda: None, lambda: None, "tpu")
    assert reading.mb is None and "tpu" in reading.reason


@pytest.mark.cuda
def test_cuda_allocator_peak() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    keep = torch.ones(10_000_000, device="cuda")  # held before: not part of the call's peak

    def call() -> object:
        tmp = torch.ones(25_000_000, device="cuda")  # 100 MB temporary
        return (tmp * 2).sum()

    reading = memory.peak_memory(call, torch.cuda.synchronize, "cuda")
    assert reading.mb is not None
    assert 199.0 <= reading.mb <= 260.0  # tmp and tmp*2 alive together
    del keep
