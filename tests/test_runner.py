"""The run loop with a fake clock and fake strategies (deterministic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deconvbench.backends import Array, Capabilities, Prepared, Strategy
from deconvbench.cases.case import Case
from deconvbench.errors import InputError, Unsupported
from deconvbench.harness.clocks import FakeClock
from deconvbench.problem import Problem
from deconvbench.results.reader import read_results
from deconvbench.results.row import ResultRow
from deconvbench.results.schema import COLUMNS, row_key
from deconvbench.results.writer import ResultWriter
from deconvbench.run import context
from deconvbench.run.loop import execute, plan
from deconvbench.run.types import NullSink, ProgressSink, RunFacts, RunOptions, Task

from helpers import CASE, FACTS, OTHER, PEAK, PROBLEM, Fake


class Wrong(Fake):
    algorithm = "wrong"

    def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        return tuple(None if r is None else np.asarray(r, dtype=np.float64) + 1.0 for r in result)


class Raising(Fake):
    algorithm = "raising"

    def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        raise RuntimeError("kaboom\nin two lines")


class OutOfMemory(Fake):
    algorithm = "oom"

    def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        raise MemoryError("cannot allocate 1 TB")


class Interrupted(Fake):
    algorithm = "interrupted"

    def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
        raise KeyboardInterrupt


class ForwardOnly(Fake):
    algorithm = "forward-only"
    capabilities = Capabilities(backward=False)


class Missing(Fake):
    backend = "missing"
    algorithm = "x"

    def unavailable_reason(self) -> str | None:
        return "pip install missing-backend"


class RefusesInPrepare(Fake):
    algorithm = "picky"

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        raise Unsupported("fake/picky needs kernel divisible by stride")


class Scribbler(Fake):
    """Writes into its inputs: must not corrupt the inputs of strategies after it."""

    algorithm = "scribbler"

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        x[...] = 0.0
        weight[...] = 0.0
        return super().prepare_forward(problem, x, weight, bias)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def started(self, total: int) -> None:
        self.events.append(("started", total))

    def task_started(self, task: Task) -> None:
        self.events.append(("task_started", task.index))

    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None:
        self.events.append(("progress", task.index, samples))

    def task_finished(self, task: Task, row: ResultRow | None) -> None:
        assert row is not None
        self.events.append(("task_finished", task.index, row["status"]))

    def finished(self) -> None:
        self.events.append(("finished",))


OPTIONS = RunOptions(threads=1, warmup_s=0.0)


def run(
    strategies: list[Strategy],
    clock: FakeClock,
    cases: list[Case] | None = None,
    options: RunOptions = OPTIONS,
    writer: ResultWriter | None = None,
    sink: ProgressSink | None = None,
) -> list[ResultRow]:
    tasks = plan(cases or [CASE], strategies, options)
    return execute(tasks, options, sink or NullSink(), writer, FACTS, clock=clock)


def test_ok_row_has_exact_timing_rates_and_every_column() -> None:
    clock = FakeClock()
    (fwd, bwd) = run([Fake(clock, seconds=2e-3)], clock)
    assert set(fwd) == set(COLUMNS)
    assert fwd["status"] == "ok" and fwd["message"] == ""
    assert fwd["pass"] == "forward" and bwd["pass"] == "backward"
    assert fwd["median_ms"] == pytest.approx(2.0)
    assert fwd["samples"] == 6 and len(fwd["samples_ms"]) == 6  # type: ignore[arg-type]
    assert fwd["stop_reason"] == "precision" and fwd["clock"] == "fake"
    assert fwd["flops"] == PROBLEM.flops("forward")
    assert fwd["gflops"] == pytest.approx(PROBLEM.flops("forward") / 2e-3 / 1e9)
    reaching = PROBLEM.flops_reaching("forward") / 2e-3 / 1e9  # cropped products left out
    assert fwd["peak_fraction"] == pytest.approx(reaching / PEAK)
    assert fwd["peak_fraction_all_products"] == pytest.approx(fwd["gflops"] / PEAK)  # type: ignore[operator]
    assert bwd["flops"] == PROBLEM.flops("backward")
    assert 0.0 <= fwd["max_rel_err"] < 1e-6  # float32 results: the reference rounded once
    assert fwd["peak_mem_mb"] is not None
    assert fwd["threads"] == 1
    assert fwd["input"] == "4x4" and fwd["output"] == "7x7" and fwd["kernel"] == "3x3"
    assert (fwd["run_id"], fwd["host"], fwd["tool_version"]) == ("run1", "testhost", "9.9")
    assert fwd["timestamp"] == "2024-01-01T00:00:00+00:00"
    assert fwd["implementation"] == "fake/exact" and fwd["device"] == "cpu"


def test_mismatch_keeps_its_error_and_is_never_timed() -> None:
    clock = FakeClock()
    strategy = Wrong(clock)
    fwd, bwd = run([strategy], clock)
    for row in (fwd, bwd):
        assert row["status"] == "mismatch"
        assert "exceeds tolerance" in str(row["message"])
        assert row["max_abs_err"] == pytest.approx(1.0)
        assert row["median_ms"] is None and row["samples"] is None and row["samples_ms"] is None
    assert strategy.calls == 2  # one verifying call per pass, nothing more


def test_exceptions_become_rows_and_the_run_goes_on() -> None:
    clock = FakeClock()
    rows = run([Raising(clock), OutOfMemory(clock), Fake(clock)], clock)
    statuses = [(r["implementation"], r["pass"], r["status"]) for r in rows]
    assert statuses == [
        ("fake/raising", "forward", "error"),
        ("fake/raising", "backward", "error"),
        ("fake/oom", "forward", "oom"),
        ("fake/oom", "backward", "oom"),
        ("fake/exact", "forward", "ok"),
        ("fake/exact", "backward", "ok"),
    ]
    assert rows[0]["message"] == "RuntimeError: kaboom in two lines"
    assert rows[2]["message"] == "MemoryError: cannot allocate 1 TB"


def test_unsupported_and_unavailable_rows_carry_reasons() -> None:
    clock = FakeClock()
    rows = run([ForwardOnly(clock), Missing(clock), RefusesInPrepare(clock)], clock)
    by = {(r["implementation"], r["pass"]): r for r in rows}
    assert by["fake/forward-only", "forward"]["status"] == "ok"
    assert by["fake/forward-only", "backward"]["status"] == "unsupported"
    assert by["fake/forward-only", "backward"]["message"] == "fake/forward-only has no backward"
    assert by["missing/x", "forward"]["status"] == "unavailable"
    assert by["missing/x", "forward"]["message"] == "pip install missing-backend"
    assert by["fake/picky", "forward"]["status"] == "unsupported"
    assert "divisible" in str(by["fake/picky", "forward"]["message"])
    assert by["fake/picky", "backward"]["status"] == "ok"


def test_a_strategy_writing_into_its_inputs_does_not_corrupt_the_next() -> None:
    clock = FakeClock()
    rows = run(
        [Scribbler(clock), Fake(clock)],
        clock,
        options=RunOptions(passes=("forward",), threads=1, warmup_s=0.0),
    )
    # the scribbler is an error that says so; the next one saw the true inputs
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert "fake/scribbler wrote into its inputs (x, weight changed" in str(rows[0]["message"])


def test_plan_order_passes_and_skip() -> None:
    clock = FakeClock()
    a, b = Fake(clock), Wrong(clock)
    tasks = plan([CASE, OTHER], [a, b], OPTIONS)
    assert [(t.case.name, t.strategy.name, t.pass_) for t in tasks] == [
        ("tiny", "fake/exact", "forward"),
        ("tiny", "fake/exact", "backward"),
        ("tiny", "fake/wrong", "forward"),
        ("tiny", "fake/wrong", "backward"),
        ("other", "fake/exact", "forward"),
        ("other", "fake/exact", "backward"),
        ("other", "fake/wrong", "forward"),
        ("other", "fake/wrong", "backward"),
    ]
    assert [t.index for t in tasks] == list(range(8))
    backward_only = RunOptions(passes=("backward",))
    assert [t.pass_ for t in plan([CASE], [a], backward_only)] == ["backward"]
    skip = {("unit", "tiny", "fake/exact", "forward", "float32")}
    skipped = plan([CASE], [a], OPTIONS, skip)
    assert [(t.index, t.pass_) for t in skipped] == [(0, "backward")]
    forward_case = Case("unit", "f", PROBLEM, passes=("forward",))
    assert [t.pass_ for t in plan([forward_case], [a], OPTIONS)] == ["forward"]


def test_task_key_matches_the_row_key() -> None:
    clock = FakeClock()
    tasks = plan([CASE], [Fake(clock)], OPTIONS)
    rows = execute(tasks, OPTIONS, NullSink(), None, FACTS, clock=clock)
    assert [t.key for t in tasks] == [row_key(r) for r in rows]


def test_reference_is_computed_once_per_case_and_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = context.expected

    def counting(problem: Problem, pass_: str, inputs: object) -> object:
        calls.append((str(problem), pass_))
        return real(problem, pass_, inputs)  # type: ignore[arg-type]

    monkeypatch.setattr(context, "expected", counting)
    clock = FakeClock()
    run([Fake(clock), Wrong(clock), Fake(clock, 1e-3)], clock, cases=[CASE, OTHER])
    assert len(calls) == 4  # 2 cases x 2 passes, shared by 3 strategies


def test_rows_are_written_as_they_finish(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "r.csv"
    written_counts: list[int] = []

    class Peek(Recorder):
        def task_finished(self, task: Task, row: ResultRow | None) -> None:
            written_counts.append(len(read_results(path)))

    with ResultWriter(path, "new") as writer:
        run([Fake(clock), Wrong(clock)], clock, writer=writer, sink=Peek())
    assert written_counts == [1, 2, 3, 4]
    frame = read_results(path)
    assert list(frame["status"]) == ["ok", "ok", "mismatch", "mismatch"]
    assert frame.loc[0, "median_ms"] == pytest.approx(2.0)


def test_sink_sees_the_whole_run_in_order() -> None:
    clock = FakeClock()
    sink = Recorder()
    run(
        [Fake(clock)],
        clock,
        options=RunOptions(passes=("forward",), warmup_s=0.0),
        sink=sink,
    )
    events = sink.events
    assert events[0] == ("started", 1) and events[1] == ("task_started", 0)
    assert [e for e in events if e[0] == "progress"] == [("progress", 0, n) for n in range(1, 7)]
    assert events[-2] == ("task_finished", 0, "ok") and events[-1] == ("finished",)


def test_interrupt_propagates_after_finished_rows_are_written(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "r.csv"
    sink = Recorder()
    options = RunOptions(passes=("forward",), threads=1, warmup_s=0.0)
    with ResultWriter(path, "new") as writer, pytest.raises(KeyboardInterrupt):
        run(
            [Fake(clock), Interrupted(clock), Fake(clock, 1e-3)],
            clock,
            options=options,
            writer=writer,
            sink=sink,
        )
    frame = read_results(path)
    assert list(frame["implementation"]) == ["fake/exact"]  # the interrupted task has no row
    assert sink.events[-1] == ("finished",)


def test_verify_only_checks_without_timing() -> None:
    clock = FakeClock()
    strategy = Fake(clock)
    options = RunOptions(verify_only=True, threads=1)
    fwd, _ = run([strategy], clock, options=options)
    assert fwd["status"] == "ok" and 0.0 <= fwd["max_rel_err"] < 1e-6
    assert fwd["median_ms"] is None and fwd["peak_mem_mb"] is None
    assert strategy.calls == 2


def test_noisy_strategy_gets_instability_warnings_in_its_message() -> None:
    clock = FakeClock()

    class Noisy(Fake):
        algorithm = "noisy"

        def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
            self.clock.advance(float(rng.uniform(0.0, 2e-3)))
            return result

    rng = np.random.default_rng(0)
    options = RunOptions(passes=("forward",), threads=1, warmup_s=0.0, budget_s=0.2)
    (row,) = run([Noisy(clock)], clock, options=options)
    assert row["status"] == "ok" and row["stop_reason"] == "budget"
    assert "misses the ±2.0% target" in str(row["message"])


def test_missing_peak_leaves_peak_fraction_empty() -> None:
    clock = FakeClock()
    tasks = plan([CASE], [Fake(clock)], OPTIONS)
    facts = RunFacts("r", "h", "v", {})
    rows = execute(tasks, OPTIONS, NullSink(), None, facts, clock=clock)
    assert rows[0]["gflops"] is not None and rows[0]["peak_fraction"] is None


@pytest.mark.parametrize(
    "kwargs, culprit",
    [
        ({"budget_s": 0.0}, "budget"),
        ({"precision": 0.0}, "precision"),
        ({"min_samples": 0}, "min_samples"),
        ({"threads": 0}, "threads"),
        ({"warmup_s": -1.0}, "warmup"),
        ({"passes": ("sideways",)}, "pass"),
    ],
)
def test_bad_options_are_input_errors(kwargs: dict[str, object], culprit: str) -> None:
    with pytest.raises(InputError, match=culprit):
        RunOptions(**kwargs)  # type: ignore[arg-type]


def test_run_facts_create() -> None:
    facts = RunFacts.create({("cpu", "float32"): 1.0})
    assert len(facts.run_id) == 12 and facts.host and facts.tool_version
    assert facts.now().endswith("+00:00")


def test_real_clock_and_numpy_strategy_end_to_end() -> None:
    """The default per-device clock, a real strategy and the real reference, quickly."""
    from deconvbench import registry

    strategy = registry.get("numpy/direct")
    options = RunOptions(threads=1, budget_s=0.2, warmup_s=0.01)
    tasks = plan([CASE], [strategy], options)
    rows = execute(tasks, options, NullSink(), None, RunFacts.create())
    for row in rows:
        assert row["status"] == "ok", row["message"]
        assert row["clock"] == "perf_counter" and row["median_ms"] > 0  # type: ignore[operator]
        assert row["inner_loops"] >= 1  # type: ignore[operator]


# --- the memory guard ----------------------------------------------------------------------


def test_a_task_over_the_memory_limit_is_skipped_before_anything_is_made() -> None:
    clock = FakeClock()
    strategy = Fake(clock)
    prepared: list[str] = []
    strategy.prepare_forward = lambda *a: prepared.append("forward")  # type: ignore[method-assign,assignment,func-returns-value]
    strategy.prepare_backward = lambda *a: prepared.append("backward")  # type: ignore[method-assign,assignment,func-returns-value]
    options = RunOptions(threads=1, warmup_s=0.0, max_memory_bytes=1000)
    rows = run([strategy], clock, options=options)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    for row in rows:
        message = str(row["message"])
        assert message.startswith("needs about ") and message.endswith("(--max-memory)")
        assert "limit 1000 B" in message
        assert row["median_ms"] is None and row["peak_mem_mb"] is None
    assert prepared == [] and strategy.calls == 0


def test_a_task_within_the_memory_limit_runs() -> None:
    clock = FakeClock()
    options = RunOptions(threads=1, warmup_s=0.0, max_memory_bytes=2**30)
    assert [r["status"] for r in run([Fake(clock)], clock, options=options)] == ["ok", "ok"]


def test_unsupported_wins_over_the_memory_guard() -> None:
    clock = FakeClock()
    options = RunOptions(threads=1, warmup_s=0.0, max_memory_bytes=1)
    rows = run([ForwardOnly(clock)], clock, options=options)
    assert [r["status"] for r in rows] == ["skipped", "unsupported"]


@pytest.mark.parametrize("field", ["max_memory_bytes", "max_gpu_memory_bytes"])
@pytest.mark.parametrize("value", [0, -5, True])
def test_a_non_positive_memory_limit_is_an_input_error(field: str, value: int) -> None:
    with pytest.raises(InputError, match="max_memory"):
        RunOptions(**{field: value})  # type: ignore[arg-type]


def test_a_failure_while_timing_keeps_what_the_steps_before_learnt() -> None:
    """The reference check's errors and the peak memory, read before the timing failed."""
    clock = FakeClock()

    class FailsLater(Fake):
        algorithm = "fails-later"

        def answer(self, result: tuple[Array | None, ...]) -> tuple[Array | None, ...]:
            if self.calls > 3:  # verified, memory read, then the timing fails
                raise MemoryError("out of memory while timing")
            return result

    options = RunOptions(passes=("forward",), threads=1, warmup_s=0.0)
    (row,) = run([FailsLater(clock)], clock, options=options)
    assert row["status"] == "oom" and row["message"] == "MemoryError: out of memory while timing"
    assert 0.0 <= row["max_rel_err"] < 1e-6 and row["peak_mem_mb"] is not None
    assert row["median_ms"] is None and row["samples_ms"] is None


def test_run_ids_never_read_as_numbers() -> None:
    from deconvbench.run.types import new_run_id

    ids = [new_run_id() for _ in range(2000)]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert all(any(c in "abcdf" for c in i) for i in ids)
