"""Clocks: how one sample of ``number`` calls is timed.

The harness never reads a timer itself; it asks a :class:`Clock` (a swappable timer, as in
``torch.utils.benchmark``), so tests drive it with a deterministic :class:`FakeClock` and CUDA
work is timed on the device with events rather than by the host.

Two time sources are kept apart on purpose: ``time_calls`` measures the work (the numbers in
the results), ``wall`` is host time for budgets and warm-up (how long the harness spends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """A timer for samples, and the host time used for budgets."""

    name: str
    resolution_s: float
    """The smallest difference the clock can tell apart, in seconds."""
    min_sample_s: float
    """How long one sample should last for the clock's resolution and overhead not to matter."""

    def wall(self) -> float:
        """Monotonic host seconds (budgets, warm-up)."""
        ...

    def cpu(self) -> float:
        """The process's CPU seconds so far (every thread, user and system): beside ``wall``
        it says whether the process ran or waited for a core."""
        ...

    def time_calls(
        self, call: Callable[[], object], number: int, synchronize: Callable[[], None]
    ) -> float:
        """Seconds taken by ``number`` back-to-back calls, their completion included."""
        ...

    def time_flushed(
        self,
        call: Callable[[], object],
        flush: Callable[[], None],
        count: int,
        synchronize: Callable[[], None],
    ) -> list[float]:
        """Seconds of each of ``count`` single calls, each preceded by an untimed ``flush``."""
        ...


def time_flushed_serially(
    clock: Clock,
    call: Callable[[], object],
    flush: Callable[[], None],
    count: int,
    synchronize: Callable[[], None],
) -> list[float]:
    """``time_flushed`` for host clocks: flush, then time one call, ``count`` times."""
    times = []
    for _ in range(count):
        flush()
        times.append(clock.time_calls(call, 1, synchronize))
    return times


def _measured_resolution(samples: int = 200) -> float:
    """The smallest non-zero step between consecutive ``perf_counter`` readings.

    ``time.get_clock_info`` reports the clock's nominal resolution (1 ns on Linux); what a
    measurement can resolve is bounded by the cost of reading it, which this observes.
    """
    best = float("inf")
    for _ in range(samples):
        t0 = time.perf_counter()
        t1 = time.perf_counter()
        while t1 == t0:
            t1 = time.perf_counter()
        best = min(best, t1 - t0)
    return max(best, time.get_clock_info("perf_counter").resolution)


class _HostClock:
    """A clock read on the host around the calls: the real one and the fake one share this."""

    name: str
    resolution_s: float
    min_sample_s: float

    def _read(self) -> float:
        raise NotImplementedError

    def wall(self) -> float:
        return self._read()

    def cpu(self) -> float:
        return time.process_time()

    def time_calls(
        self, call: Callable[[], object], number: int, synchronize: Callable[[], None]
    ) -> float:
        t0 = self._read()
        for _ in range(number):
            call()
        synchronize()
        return self._read() - t0

    def time_flushed(
        self,
        call: Callable[[], object],
        flush: Callable[[], None],
        count: int,
        synchronize: Callable[[], None],
    ) -> list[float]:
        return time_flushed_serially(self, call, flush, count, synchronize)


class PerfCounterClock(_HostClock):
    """Host time with ``time.perf_counter``; the call's ``synchronize`` is inside the sample.

    One sample lasts at least 1 ms (or 1000x the observed resolution, if that is longer):
    timer reads cost tens of nanoseconds and the scheduler's tick is coarser still, so shorter
    samples would mostly measure the harness.
    """

    name = "perf_counter"

    def __init__(self) -> None:
        self.resolution_s = _measured_resolution()
        self.min_sample_s = max(1e-3, 1000.0 * self.resolution_s)

    def _read(self) -> float:
        return time.perf_counter()


class CudaEventClock:
    """Device time between two CUDA events recorded on the current stream around the calls.

    Events are created per sample and the end event is waited on, so every sample is a
    complete, independent reading; host launch overhead is excluded as long as the GPU is
    the bottleneck (an untimed call queued ahead of the start event makes sure the GPU is
    busy while the timed calls are launched). The documented event resolution is about
    0.5 µs, so one sample should last at least 1000x that.
    """

    name = "cuda-event"
    resolution_s = 0.5e-6
    min_sample_s = 1000 * 0.5e-6

    def __init__(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("CudaEventClock needs torch with a CUDA device")
        self._torch = torch

    def wall(self) -> float:
        return time.perf_counter()

    def cpu(self) -> float:
        return time.process_time()

    def time_calls(
        self, call: Callable[[], object], number: int, synchronize: Callable[[], None]
    ) -> float:
        cuda = self._torch.cuda
        start = cuda.Event(enable_timing=True)
        end = cuda.Event(enable_timing=True)
        # One untimed call first keeps the GPU busy while the timed ones are launched, so
        # the first timed kernel does not wait for the host (launch latency stays out).
        call()
        start.record()
        for _ in range(number):
            call()
        end.record()
        end.synchronize()
        synchronize()  # surfaces asynchronous errors of work on other streams
        return float(start.elapsed_time(end)) / 1e3

    def time_flushed(
        self,
        call: Callable[[], object],
        flush: Callable[[], None],
        count: int,
        synchronize: Callable[[], None],
    ) -> list[float]:
        """Every (flush, start, call, end) is queued before waiting once, as triton's
        ``do_bench`` does: the host stays ahead of the GPU, so launch latency does not leak
        into samples that each hold a single call."""
        cuda = self._torch.cuda
        pairs = []
        for _ in range(count):
            flush()
            start = cuda.Event(enable_timing=True)
            end = cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            pairs.append((start, end))
        pairs[-1][1].synchronize()
        synchronize()
        return [float(a.elapsed_time(b)) / 1e3 for a, b in pairs]


class FakeClock(_HostClock):
    """A deterministic clock for tests: time moves only when something calls :meth:`advance`.

    A fake strategy's call advances it by a known amount, so every sample, every budget and
    every stopping decision is reproducible. ``resolution_s`` quantises readings like a real
    clock's tick would. Its CPU time moves with its time (one thread busy throughout) unless
    :meth:`advance` says otherwise.
    """

    name = "fake"

    def __init__(
        self, resolution_s: float = 1e-9, min_sample_s: float = 1e-3, start: float = 0.0
    ) -> None:
        self.resolution_s = resolution_s
        self.min_sample_s = min_sample_s
        self.now = start
        self.cpu_now = 0.0

    def advance(self, seconds: float, cpu_s: float | None = None) -> None:
        """Time moves by ``seconds``; the process's CPU time by ``cpu_s`` (default: as much)."""
        if seconds < 0 or (cpu_s is not None and cpu_s < 0):
            raise ValueError("a clock cannot go backwards")
        self.now += seconds
        self.cpu_now += seconds if cpu_s is None else cpu_s

    def cpu(self) -> float:
        return self.cpu_now

    def _read(self) -> float:
        return round(self.now / self.resolution_s) * self.resolution_s


_CPU_CLOCK: PerfCounterClock | None = None


def clock_for(device: str) -> Clock:
    """The clock that times work on ``device``: CUDA events for CUDA, else ``perf_counter``."""
    global _CPU_CLOCK
    if device.startswith("cuda"):
        return CudaEventClock()
    if _CPU_CLOCK is None:
        _CPU_CLOCK = PerfCounterClock()  # its resolution probe runs once per process
    return _CPU_CLOCK
