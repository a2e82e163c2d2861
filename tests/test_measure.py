"""The timing harness, driven by a deterministic fake clock."""

from __future__ import annotations

import gc
import itertools
import time

import pytest

from deconvbench.harness import measure as m
from deconvbench.harness.clocks import FakeClock, PerfCounterClock, clock_for


def fixed_call(clock: FakeClock, seconds: float):  # type: ignore[no-untyped-def]
    def call() -> None:
        clock.advance(seconds)

    return call


def cycling_call(clock: FakeClock, durations: list[float]):  # type: ignore[no-untyped-def]
    it = itertools.cycle(durations)

    def call() -> None:
        clock.advance(next(it))

    return call


def test_constant_call_stops_on_precision_with_exact_samples() -> None:
    clock = FakeClock()
    result = m.measure(fixed_call(clock, 2e-3), clock, m.Settings(min_samples=5))
    assert result.stop == "precision"
    assert result.number == 1  # 2 ms already exceeds the 1 ms minimum sample
    assert len(result.samples_ms) == 6  # the first n with a 95% CI of the median
    assert all(s == pytest.approx(2.0) for s in result.samples_ms)
    assert result.median_ms == pytest.approx(2.0)
    assert result.warnings == []
    assert result.clock == "fake"


def test_calibration_makes_samples_last_the_minimum_sample_time() -> None:
    clock = FakeClock(min_sample_s=1e-3)
    result = m.measure(fixed_call(clock, 10e-6), clock)
    assert result.number == 100
    assert result.samples_ms[0] == pytest.approx(0.01)  # stored per call, in ms


def test_calibration_grows_past_a_coarse_clock_tick() -> None:
    """A clock with a 1 ms tick reads a 50 µs call as 0: the count must still grow."""
    clock = FakeClock(resolution_s=1e-3, min_sample_s=10e-3)
    number, _ = m.calibrate(fixed_call(clock, 50e-6), lambda: None, clock, per_call_s=0.0)
    assert number * 50e-6 >= 10e-3


def test_a_slow_call_is_not_rerun_by_calibration() -> None:
    clock = FakeClock()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        clock.advance(0.5)

    result = m.measure(call, clock, m.Settings(budget_s=1.0, warmup_s=0.0, min_samples=2))
    assert result.number == 1 and result.warmup_calls == 1
    assert calls == 1 + len(result.samples_ms)


def test_min_samples_is_honoured_before_precision_stops() -> None:
    clock = FakeClock()
    result = m.measure(fixed_call(clock, 2e-3), clock, m.Settings(min_samples=30))
    assert len(result.samples_ms) == 30
    assert result.stop == "precision"


def test_noisy_call_stops_on_budget_with_a_warning() -> None:
    clock = FakeClock()
    # alternating 1 ms / 3 ms: the median's CI never gets within ±2%
    call = cycling_call(clock, [1e-3, 3e-3])
    result = m.measure(call, clock, m.Settings(budget_s=0.5, warmup_s=0.0))
    assert result.stop == "budget"
    assert 0.5 <= result.elapsed_s < 0.51
    assert any("misses the ±2.0% target" in w.text for w in result.warnings)
    assert "time budget exhausted" in [w.text for w in result.warnings]


def test_slow_call_stops_at_the_overrun_cap_short_of_min_samples() -> None:
    clock = FakeClock()
    settings = m.Settings(budget_s=1.0, min_samples=10, warmup_s=0.0)
    result = m.measure(fixed_call(clock, 2.0), clock, settings)
    assert result.stop == "budget"
    assert len(result.samples_ms) == 3  # 3 x 2 s >= 5 x the 1 s budget
    assert any(w.text.startswith("only 3 samples") for w in result.warnings)


def test_max_samples_caps_the_measurement() -> None:
    clock = FakeClock()
    call = cycling_call(clock, [1e-3, 3e-3])
    settings = m.Settings(budget_s=100.0, min_samples=5, max_samples=40)
    result = m.measure(call, clock, settings)
    assert result.stop == "max-samples"
    assert len(result.samples_ms) == 40


def test_warm_up_runs_for_its_time_and_at_least_once() -> None:
    clock = FakeClock()
    calls, fastest = m.warm_up(fixed_call(clock, 10e-3), lambda: None, clock, 0.05)
    assert calls == 5 and fastest == pytest.approx(10e-3)
    calls, _ = m.warm_up(fixed_call(clock, 10e-3), lambda: None, clock, 0.0)
    assert calls == 1


def test_warm_up_terminates_on_a_clock_that_never_moves() -> None:
    clock = FakeClock()
    calls, _ = m.warm_up(lambda: None, lambda: None, clock, 1.0)
    assert calls == m.MAX_WARMUP_CALLS


def test_progress_is_called_between_samples() -> None:
    clock = FakeClock()
    seen: list[tuple[int, float]] = []
    m.measure(fixed_call(clock, 2e-3), clock, progress=lambda n, t: seen.append((n, t)))
    assert [n for n, _ in seen] == list(range(1, 7))
    assert all(b[1] > a[1] for a, b in itertools.pairwise(seen))


def test_flush_runs_outside_the_timed_region_once_per_single_call_sample() -> None:
    clock = FakeClock()
    flushes = 0

    def flush() -> None:
        nonlocal flushes
        flushes += 1
        clock.advance(1.0)  # a slow flush must not show up in any sample

    result = m.measure(fixed_call(clock, 10e-6), clock, flush=flush)
    assert result.number == 1
    assert flushes == len(result.samples_ms)
    assert all(s == pytest.approx(0.01) for s in result.samples_ms)


def test_flushed_samples_are_queued_in_batches_within_the_budget() -> None:
    counts: list[int] = []

    class Recording(FakeClock):
        def time_flushed(self, call, flush, count, synchronize):  # type: ignore[no-untyped-def]
            counts.append(count)
            return super().time_flushed(call, flush, count, synchronize)

    clock = Recording()
    noisy = cycling_call(clock, [1e-3, 3e-3])  # never meets the CI target: runs to the budget
    result = m.measure(noisy, clock, m.Settings(budget_s=0.1), flush=lambda: None)
    assert counts[0] == 1 and max(counts) == m.FLUSHED_BATCH
    assert sum(counts) == len(result.samples_ms)
    assert result.elapsed_s < 0.1 + m.FLUSHED_BATCH * 3e-3  # a batch never starts past budget


def test_synchronize_is_part_of_each_sample() -> None:
    clock = FakeClock()
    syncs = 0

    def sync() -> None:
        nonlocal syncs
        syncs += 1
        clock.advance(1e-3)  # the device finishing its work

    result = m.measure(lambda: None, clock, synchronize=sync)
    assert result.median_ms == pytest.approx(1.0 / result.number)
    assert syncs > len(result.samples_ms)


def test_gc_is_paused_while_sampling_and_restored() -> None:
    clock = FakeClock()
    states: list[bool] = []

    def call() -> None:
        states.append(gc.isenabled())
        clock.advance(2e-3)

    assert gc.isenabled()
    result = m.measure(call, clock, m.Settings(warmup_s=0.0))
    sampled = states[-len(result.samples_ms) :]
    assert not any(sampled)
    assert gc.isenabled()


def test_gc_is_restored_when_the_call_raises() -> None:
    clock = FakeClock()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        clock.advance(2e-3)
        if calls > 3:  # fails while sampling, after warm-up and calibration
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        m.measure(call, clock, m.Settings(warmup_s=0.0))
    assert gc.isenabled()


def test_gc_stays_disabled_if_it_was_disabled() -> None:
    clock = FakeClock()
    gc.disable()
    try:
        m.measure(fixed_call(clock, 2e-3), clock)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_measurement_statistics_are_derived_from_raw_samples() -> None:
    settings = m.Settings()
    result = m.Measurement((1.0, 2.0, 3.0, 4.0, 100.0, 2.0), 1, "precision", 1, 0.1, "x", settings)
    assert result.median_ms == 2.5
    assert result.summary.max == 100.0
    assert result.summary is result.summary  # computed once


@pytest.mark.parametrize(
    "kwargs",
    [{"budget_s": 0}, {"precision": 0}, {"min_samples": 0}, {"warmup_s": -1}, {"max_samples": 2}],
)
def test_settings_reject_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        m.Settings(**kwargs)  # type: ignore[arg-type]


def test_perf_counter_clock_times_real_work() -> None:
    clock = PerfCounterClock()
    assert 0 < clock.resolution_s < 1e-3
    assert clock.min_sample_s >= 1e-3
    elapsed = clock.time_calls(lambda: time.sleep(0.002), 3, lambda: None)
    assert 0.006 <= elapsed < 0.5
    result = m.measure(lambda: sum(range(2000)), clock, m.Settings(budget_s=0.3))
    assert result.number > 1 and result.median_ms > 0
    assert result.number * result.median_ms >= 0.5  # a sample lasts ~>= 1 ms


def test_clock_for_the_cpu_is_shared() -> None:
    assert clock_for("cpu") is clock_for("cpu")
    assert isinstance(clock_for("cpu"), PerfCounterClock)


def test_no_l2_flush_on_the_cpu() -> None:
    assert m.make_l2_flush("cpu") is None


def test_fake_clock_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError):
        FakeClock().advance(-1.0)


@pytest.mark.cuda
def test_cuda_event_clock_and_l2_flush() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from deconvbench.harness.clocks import CudaEventClock

    clock = clock_for("cuda")
    assert isinstance(clock, CudaEventClock)
    a = torch.randn(2048, 2048, device="cuda")
    flush = m.make_l2_flush("cuda")
    assert flush is not None
    result = m.measure(lambda: a @ a, clock, m.Settings(budget_s=0.5), flush=flush)
    assert result.number == 1 and result.median_ms > 0
    unflushed = m.measure(lambda: a @ a, clock, m.Settings(budget_s=0.5))
    assert unflushed.number * unflushed.median_ms >= 0.4  # >= 1000 x 0.5 µs per sample
    # events measure the device: the same 2048³ product takes well under 100 ms on any GPU
    assert unflushed.median_ms < 100
