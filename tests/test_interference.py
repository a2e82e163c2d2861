"""Rows that notice interference: the pure detector (``harness/interference.py``) on fixed
samples, the CPU-time columns and note, the repeat of a disturbed round, and a real run
beside CPU hogs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deconvbench.harness import interference as itf
from deconvbench.harness import notes
from deconvbench.harness.clocks import FakeClock
from deconvbench.harness.measure import Measurement, Settings, measure
from deconvbench.problem import Problem
from deconvbench.results.reader import read_results
from deconvbench.results.writer import ResultWriter
from deconvbench.run import loop
from deconvbench.run.outcome import measurement_from_json, measurement_json
from deconvbench.run.rounds import cpu_use, interference_note
from deconvbench.run.types import RunOptions

from helpers import CASE, FACTS, Fake, row

ROOT = Path(__file__).parents[1]

# --- the detector on fixed samples -------------------------------------------------------------

HOG_FORWARD = [0.975, 0.976, 0.977, 0.978, 0.98, 0.981, 0.985, 0.987, 0.987, 0.993, 1.003,
               1.006, 1.012, 1.013, 1.015, 1.017, 1.019, 1.029, 1.043, 1.067, 5.018, 5.024,
               5.036, 5.041, 5.06, 5.072, 5.073, 5.083, 5.132, 5.289]  # fmt: skip
"""Sample durations (ms) of torch-cpu/native forward on a 4x4 input beside two CPU hogs on
this 2-core VM: 1 ms of work, some samples delayed by one 4 ms slice."""


def test_samples_delayed_by_whole_scheduler_periods_are_flagged() -> None:
    found = itf.detect(HOG_FORWARD, None, 1.0)
    assert found is not None and found.period_ms is not None
    assert 3.9 < found.period_ms < 4.4 and found.delayed == 10
    assert "10/30 samples delayed by multiples of" in found.describe()


def test_the_issues_pattern_of_8_ms_multiples_is_flagged() -> None:
    """0.03 ms calls, most samples waiting 1-4 slices of 8 ms (the issue's 7.98-31.97 ms)."""
    samples = [0.03, 0.031, 0.03, 7.98, 15.98, 15.98, 15.98, 23.97, 15.98, 31.97, 7.98, 15.98]
    found = itf.detect(samples, None, 1.0)
    assert found is not None and found.period_ms is not None
    assert 7.9 < found.period_ms < 8.0


def test_a_descheduled_process_is_flagged_by_its_cpu_time() -> None:
    clean = [1.0, 1.01, 0.99, 1.02, 1.0, 1.0, 1.01, 0.995]
    found = itf.detect(clean, cpu_s=0.02, wall_s=1.0)  # on a CPU 2% of the time
    assert found is not None and found.descheduled and found.period_ms is None
    assert found.describe() == "on a CPU 2% of the sampling time"
    # all samples delayed alike (15.98 ms each): no ticks to see, the CPU time tells
    assert itf.detect([15.98] * 20, cpu_s=0.006, wall_s=0.32) is not None


@pytest.mark.parametrize("busy", [0.55, 0.9, 1.0, 1.97, 4.0])
def test_a_busy_process_is_not_descheduled(busy: float) -> None:
    assert itf.detect([2.0, 2.01, 1.99, 2.02, 2.0, 2.0], cpu_s=busy * 0.5, wall_s=0.5) is None


def clean_sets() -> list[list[float]]:
    """Noisy but clean sample sets: lognormal noise of 1-20% around 0.05-300 ms, with and
    without a long tail of interrupted samples (1.2-3x, spread continuously), a slow drift, and
    a few sizes."""
    rng = np.random.default_rng(20240501)
    out = []
    for scale in (0.05, 1.0, 1.1, 2.5, 6.0, 30.0, 300.0):
        for sigma in (0.01, 0.03, 0.08, 0.2):
            for n in (6, 12, 40, 200):
                s = scale * rng.lognormal(0.0, sigma, n)
                out.append(list(s))
                tail = s.copy()
                hit = rng.random(n) < 0.1
                tail[hit] *= rng.uniform(1.2, 3.0, int(hit.sum()))
                out.append(list(tail))
                out.append(list(s * np.linspace(1.0, 1.15, n)))  # drift
    return out


def test_noisy_but_clean_samples_are_not_flagged() -> None:
    flagged = [s for s in clean_sets() if itf.detect(s, cpu_s=0.9, wall_s=1.0) is not None]
    assert flagged == []


def quiet_rounds(path: Path) -> list[list[float]]:
    """Each round's sample durations (ms per sample) of a results file."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["status"] != "ok" or not r["samples_ms"]:
                continue
            samples = [float(v) for v in r["samples_ms"].split(";")]
            number = int(r["inner_loops"] or 1)
            start = 0
            for count in map(int, (r.get("round_samples") or str(len(samples))).split(";")):
                out.append([s * number for s in samples[start : start + count]])
                start += count
    return out


@pytest.mark.parametrize("name", ["dcgan.csv", "engines.csv", "dcgan-model.csv"])
def test_the_shipped_quiet_runs_are_not_flagged(name: str) -> None:
    """Real samples of quiet runs on the development VM (results/cpu-epyc-2vcpu/): every
    round of every row passes, bimodal and long-tailed ones included."""
    rounds = quiet_rounds(ROOT / "results" / "cpu-epyc-2vcpu" / name)
    assert len(rounds) > 50
    assert [r for r in rounds if itf.tick_period(r) is not None] == []


def test_too_few_or_too_short_samples_say_nothing() -> None:
    assert itf.tick_period([1.0, 5.0, 9.0]) is None
    assert itf.tick_period([1.0, 1.5, 2.0, 1.5, 1.0, 2.0, 1.5]) is None  # 0.5 ms steps
    assert itf.busy_threads(None, 1.0) is None and itf.busy_threads(1.0, 0.0) is None


# --- the measurement, the note and the columns -------------------------------------------------


def test_measure_records_the_cpu_time_beside_the_wall_time() -> None:
    clock = FakeClock()

    def waiting() -> None:
        clock.advance(2e-3, cpu_s=2e-5)  # 2 ms of wall time, 1% of it on a CPU

    m = measure(waiting, clock, Settings(min_samples=5))
    assert m.cpu_s == pytest.approx(m.elapsed_s * 0.01)
    found = m.interference()
    assert found is not None and found.descheduled
    steady = measure(lambda: clock.advance(2e-3), clock, Settings(min_samples=5))
    assert steady.cpu_s == pytest.approx(steady.elapsed_s) and steady.interference() is None
    device = measure(lambda: clock.advance(2e-3), clock, count_faults=False)
    assert device.cpu_s is None


def test_cpu_time_and_attempts_travel_in_the_journal() -> None:
    m = Measurement((1.0, 2.0), 3, "precision", 1, 0.5, "fake", Settings(), cpu_s=0.25,
                    attempts=2)  # fmt: skip
    back = measurement_from_json(measurement_json(m), Settings())
    assert back.cpu_s == 0.25 and back.attempts == 2
    old = {k: v for k, v in measurement_json(m).items() if k not in ("cpu_s", "attempts")}
    assert measurement_from_json(old, Settings()).cpu_s is None  # an older version's journal


def test_cpu_columns_pool_the_rounds() -> None:
    a = Measurement((1.0,) * 10, 2, "precision", 0, 0.02, "fake", Settings(), cpu_s=0.04)
    b = Measurement((1.0,) * 10, 2, "precision", 0, 0.02, "fake", Settings(), cpu_s=0.04)
    per_call, ratio = cpu_use([a, b], threads=2)
    assert per_call == pytest.approx(2.0)  # 80 ms of CPU over 40 calls
    assert ratio == pytest.approx(1.0)  # both threads busy throughout
    assert cpu_use([a, Measurement((1.0,), 1, "budget", 0, 1.0, "x", Settings())], 2) == (
        None, None)  # fmt: skip


def test_the_note_names_the_rounds_and_a_repeat() -> None:
    clean = Measurement((1.0,) * 8, 1, "precision", 0, 0.01, "fake", Settings(), cpu_s=0.01)
    hit = Measurement((1.0,) * 8, 1, "precision", 0, 0.01, "fake", Settings(), cpu_s=0.0001,
                      attempts=2)  # fmt: skip
    assert interference_note([clean, clean]) is None
    note = interference_note([clean, hit, clean])
    assert note is not None and note.kind == notes.NoteKind.INTERFERENCE
    assert note.text == (
        "interference: other work took the CPU in 1 of 3 rounds (on a CPU 1% of the sampling "
        "time), still after measuring again"
    )
    assert notes.kind_of(note.text) == notes.NoteKind.INTERFERENCE
    assert notes.split(f"{note.text}; time budget exhausted")[0] == note


def test_a_file_without_the_cpu_columns_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(row(samples=[1.0, 1.1], cpu_ms_per_call=1.05, cpu_time_ratio=0.5))
    frame = read_results(path)
    assert frame.iloc[0]["cpu_time_ratio"] == 0.5 and frame.iloc[0]["cpu_ms_per_call"] == 1.05
    old = pd.read_csv(path, dtype=str, keep_default_na=False)
    old.drop(columns=["cpu_ms_per_call", "cpu_time_ratio"]).to_csv(path, index=False)
    frame = read_results(path)
    assert "cpu_time_ratio" not in frame.columns and frame.iloc[0]["median_ms"] == 1.05


# --- the run loop: a disturbed round is measured once more ------------------------------------


class Disturbed(Fake):
    """Descheduled (1% on a CPU) in its first ``bad`` preparations, then quiet."""

    algorithm = "disturbed"

    def __init__(self, clock: FakeClock, bad: int) -> None:
        super().__init__(clock)
        self.bad, self.preparations = bad, 0

    def prepare_forward(self, problem: Problem, x, weight, bias):  # type: ignore[no-untyped-def]
        self.preparations += 1
        prepared = super().prepare_forward(problem, x, weight, bias)
        if self.preparations > self.bad:
            return prepared
        inner = prepared.call

        def call() -> object:
            out = inner()
            self.clock.cpu_now -= self.seconds * 0.99  # most of it spent waiting
            return out

        return type(prepared)(call, prepared.fetch)


@pytest.mark.parametrize(("bad", "rounds", "runs", "note"), [
    (1, 3, 4, None),  # round 1 repeated, clean the second time
    (2, 1, 2, "interference: other work took the CPU (on a CPU 1% of the sampling time), "
              "still after measuring again"),
    (2, 2, 3, "interference: other work took the CPU in 1 of 2 rounds"),
])  # fmt: skip
def test_a_disturbed_round_is_measured_once_more(
    bad: int, rounds: int, runs: int, note: str | None
) -> None:
    clock = FakeClock()
    strategy = Disturbed(clock, bad)
    options = RunOptions(threads=1, warmup_s=0.0, passes=("forward",), rounds=rounds)
    tasks = loop.plan([CASE], [strategy], options)
    (result,) = loop.execute(tasks, options, _Sink(), None, FACTS, clock=clock)
    assert strategy.preparations == runs  # one repeat at most per round
    message = str(result["message"])
    if note is None:
        assert "interference" not in message
    else:
        assert note in message
    assert result["cpu_time_ratio"] is not None


class _Sink:
    def started(self, total: int) -> None: ...
    def task_started(self, task: object) -> None: ...
    def task_progress(self, task: object, samples: int, elapsed_s: float) -> None: ...
    def task_finished(self, task: object, row: object) -> None: ...
    def finished(self) -> None: ...


# --- a real run beside CPU hogs ----------------------------------------------------------------

TINY = "batch=1,in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1"
HOG = "while True: pass"


def test_a_run_beside_cpu_hogs_notices_them(tmp_path: Path) -> None:
    """One hog per core started here, a tiny torch run beside them: the scheduler decides how
    the run is disturbed, so the test asserts on what every disturbed run shows (a flagged row,
    or CPU time far below the wall time, or the sidecar's load), never on timing."""
    pytest.importorskip("torch")
    cores = len(os.sched_getaffinity(0))
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(cores)]
    out = tmp_path / "hog.csv"
    try:
        time.sleep(0.3)
        if any(h.poll() is not None for h in hogs):
            pytest.skip("the CPU hogs could not start")
        done = subprocess.run(
            [sys.executable, "-m", "deconvbench", "run", "--case", TINY, "-i",
             "torch-cpu/native", "--rounds", "1", "--threads", str(cores), "-o", str(out)],
            capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
    finally:
        for h in hogs:
            h.kill()
        for h in hogs:
            h.wait()
    assert done.returncode == 0, done.stderr
    frame = read_results(out)
    assert set(frame["status"]) == {"ok"}
    flagged = frame["message"].str.contains("interference")
    ratios = frame["cpu_time_ratio"]
    assert ratios.notna().all() and (frame["cpu_ms_per_call"] > 0).all()
    load = json.loads((tmp_path / "hog.csv.json").read_text())["load"]
    assert set(load) == {"before", "after"}
    others = [load[k]["others_busy_cores"] for k in ("before", "after")]
    # the hogs show: in a row's note, in its CPU time (descheduled: under half a core busy),
    # or at least in the load the sidecar saw beside the run
    assert flagged.any() or (ratios * cores < 0.5).any() or max(others) > 0.5 * cores, (
        frame[["pass", "median_ms", "cpu_time_ratio", "message"]].to_string(), load)
