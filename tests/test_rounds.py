"""Tests of the pure parts of ``run --rounds`` (``deconvbench/rounds.py``); the runner's use
of them is tested in test_runner.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from deconvbench import rounds
from deconvbench.errors import InputError
from deconvbench.harness.measure import Settings
from deconvbench.results import COLUMNS, Row


def part(samples: list[float], key: str = "numpy/direct", **values: object) -> Row:
    row: Row = dict.fromkeys(COLUMNS)
    row.update(suite="s", case="c", implementation=key, dtype="float32", samples_ms=samples,
               status="ok", message="", **{"pass": "forward"})  # fmt: skip
    row.update(values)
    return row


def test_round_settings_split_the_budget_and_keep_enough_samples() -> None:
    full = Settings(budget_s=3.0, min_samples=5)
    assert rounds.round_settings(full, 1) is full
    third = rounds.round_settings(full, 3)
    assert third.budget_s == pytest.approx(1.0) and third.min_samples == 2
    assert third.precision == full.precision and third.warmup_s == full.warmup_s
    assert rounds.round_settings(Settings(min_samples=12), 3).min_samples == 4


def test_round_label() -> None:
    assert rounds.round_label(0, 1) == ""
    assert rounds.round_label(1, 3) == "round 2/3"


def test_pooled_keeps_round_order_and_sizes() -> None:
    parts = [
        part([1.0, 2.0], inner_loops=4, stop_reason="precision"),
        part("3.0;4.0;5.0", inner_loops=9, stop_reason="budget"),  # type: ignore[arg-type]
        part((6.0,), inner_loops=2, stop_reason="precision"),  # type: ignore[arg-type]
    ]
    measurement, sizes = rounds.pooled_measurement(parts, Settings())
    assert measurement.samples_ms == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0) and sizes == [2, 3, 1]
    assert measurement.number == 9 and measurement.stop == "budget"


def test_disagreement_names_the_spread_only_when_it_is_large() -> None:
    assert rounds.disagreement([part([1.0, 1.0]), part([1.05, 1.05])]) is None
    note = rounds.disagreement([part([1.0, 1.0]), part([1.3, 1.3]), part([1.1])])
    assert note is not None and "1-1.3 ms" in note and "30% apart" in note
    assert rounds.disagreement([part([1.0])]) is None


def test_merged_notes_and_stop_reasons_are_distinct_in_order() -> None:
    parts = [
        part([1.0], message="a; b", stop_reason="precision"),
        part([1.0], message="b; c", stop_reason="budget"),
        part([1.0], message="", stop_reason="precision"),
    ]
    assert rounds.merged_notes(parts) == ["a", "b", "c"]
    assert rounds.stop_reasons(parts) == "precision+budget"


def test_journal_round_trip_resume_and_torn_line(tmp_path: Path) -> None:
    results = tmp_path / "r.csv"
    journal = rounds.Journal(results, "new")
    journal.add(0, part([1.0, 2.0]))
    journal.add(1, part([3.0]))
    journal.add(0, part([5.0], key="numpy/fft"))
    with journal.path.open("a") as f:
        f.write('{"round": 1, "row": {"suite"')  # a crash mid-write
    loaded = rounds.Journal(results, "resume").load()
    assert set(loaded) == {("s", "c", "numpy/direct", "forward", "float32"),
                           ("s", "c", "numpy/fft", "forward", "float32")}  # fmt: skip
    direct = loaded[("s", "c", "numpy/direct", "forward", "float32")]
    assert sorted(direct) == [0, 1] and direct[0]["samples_ms"] == [1.0, 2.0]
    assert rounds.Journal(results, "overwrite").load() == {}  # a fresh run forgets it
    assert not journal.path.exists()


def test_journal_remove_is_idempotent(tmp_path: Path) -> None:
    journal = rounds.Journal(tmp_path / "r.csv", "new")
    journal.remove()
    journal.add(0, part([1.0]))
    journal.remove()
    assert not journal.path.exists()


# --- the runner in rounds (fake clock, fake strategies) ---------------------------------------

from test_runner import CASE, FACTS, OTHER, Fake  # noqa: E402  (fixtures of the runner's tests)

from deconvbench import results, runner  # noqa: E402
from deconvbench.harness.clocks import FakeClock  # noqa: E402
from deconvbench.problem import Problem  # noqa: E402


class Drifting(Fake):
    """Slower by ``factor`` in every round after the first: the machine drifting."""

    algorithm = "drifting"

    def __init__(self, clock: FakeClock, factor: float = 1.0, fail_in_round: int | None = None):
        super().__init__(clock)
        self.base, self.factor, self.fail_in_round = self.seconds, factor, fail_in_round
        self.rounds: dict[Problem, int] = {}  # preparations so far, per case

    @property
    def preparations(self) -> int:
        return sum(self.rounds.values())

    def prepare_forward(self, problem: Problem, x, weight, bias):  # type: ignore[no-untyped-def]
        round_ = self.rounds.get(problem, 0)
        self.rounds[problem] = round_ + 1
        if round_ == self.fail_in_round:
            raise RuntimeError(f"broke in round {round_ + 1}")
        self.seconds = self.base * self.factor**round_
        return super().prepare_forward(problem, x, weight, bias)


class Order:
    """A sink that records which (task, round) ran, and can interrupt the run."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.units: list[tuple[int, int]] = []
        self.finals: list[str] = []
        self.stop_after = stop_after

    def started(self, total: int) -> None:
        self.total = total

    def task_started(self, task: runner.Task) -> None:
        if self.stop_after is not None and len(self.units) == self.stop_after:
            raise KeyboardInterrupt
        self.units.append((task.index, task.round))

    def task_progress(self, task: runner.Task, samples: int, elapsed_s: float) -> None:
        pass

    def task_finished(self, task: runner.Task, row: results.Row | None) -> None:
        if row is not None:
            self.finals.append(str(row["implementation"]))

    def finished(self) -> None:
        pass


THREE = runner.RunOptions(threads=1, warmup_s=0.0, passes=("forward",), rounds=3)


def execute(strategies, clock, options=THREE, sink=None, writer=None, journal=None, cases=None):  # type: ignore[no-untyped-def]
    tasks = runner.plan(cases or [CASE], strategies, options,
                        writer.done_keys() if writer else frozenset())  # fmt: skip
    return runner.execute(tasks, options, sink or Order(), writer, FACTS, clock=clock,
                          journal=journal)  # fmt: skip


def test_rounds_run_round_major_and_pool_into_one_row() -> None:
    clock = FakeClock()
    sink = Order()
    rows = execute([Drifting(clock, 1.3), Fake(clock)], clock, sink=sink, cases=[CASE, OTHER])
    # every task's first round before any second round: rounds spread over the run
    assert [r for _, r in sink.units] == [0] * 4 + [1] * 4 + [2] * 4
    assert sink.total == 12 and len(rows) == 4
    drifting = rows[0]
    sizes = [int(v) for v in str(drifting["round_samples"]).split(";")]
    assert drifting["rounds"] == 3 and len(sizes) == 3 and sum(sizes) == drifting["samples"]
    samples = list(drifting["samples_ms"])  # type: ignore[call-overload]
    assert samples[: sizes[0]] == [pytest.approx(2.0)] * sizes[0]
    assert samples[-1] == pytest.approx(2.0 * 1.3**2)
    assert drifting["median_ms"] == pytest.approx(2.0 * 1.3)
    assert "rounds disagree: medians 2-3.38 ms (69% apart" in str(drifting["message"])
    assert "unstable" not in str(drifting["message"])  # the disagreement says why, once
    steady = rows[1]
    assert steady["rounds"] == 3 and "rounds disagree" not in str(steady["message"])
    assert steady["max_rel_err"] is not None and steady["peak_mem_mb"] is not None  # round 1's


def test_a_row_that_fails_is_final_at_once_and_not_run_again() -> None:
    clock = FakeClock()
    sink = Order()
    early, late = Drifting(clock, fail_in_round=0), Drifting(clock, fail_in_round=1)
    early.algorithm, late.algorithm = "early", "late"
    rows = execute([early, late], clock, sink=sink)
    by_impl = {r["implementation"]: r for r in rows}
    assert by_impl["fake/early"]["status"] == "error" and early.preparations == 1
    assert by_impl["fake/late"]["status"] == "error" and late.preparations == 2
    assert by_impl["fake/late"]["message"] == "round 2/3: RuntimeError: broke in round 2"
    assert sink.finals == ["fake/early", "fake/late"]  # each written once, when it failed


def test_an_interrupted_run_resumes_from_its_journal(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "r.csv"
    first = Drifting(clock)
    with results.ResultWriter(path, "new") as writer, pytest.raises(KeyboardInterrupt):
        journal = rounds.Journal(path, "new")
        execute([first, Fake(clock)], clock, sink=Order(stop_after=3), writer=writer,
                journal=journal)  # fmt: skip
    assert results.read_results(path).empty  # no row is complete yet...
    assert len(journal.load()) == 2  # ...but both first rounds and one second are kept
    again = Drifting(clock)
    sink = Order()
    with results.ResultWriter(path, "resume") as writer:
        journal = rounds.Journal(path, "resume")
        rows = execute([again, Fake(clock)], clock, sink=sink, writer=writer, journal=journal)
    assert sink.units == [(1, 1), (0, 2), (1, 2)]  # only the rounds not yet done
    assert [r["rounds"] for r in rows] == [3, 3]
    frame = results.read_results(path)
    assert len(frame) == 2 and not journal.path.exists()


def test_verify_only_ignores_rounds() -> None:
    clock = FakeClock()
    sink = Order()
    options = runner.RunOptions(threads=1, passes=("forward",), rounds=3, verify_only=True)
    rows = execute([Fake(clock)], clock, options=options, sink=sink)
    assert sink.units == [(0, 0)] and rows[0]["samples"] is None


@pytest.mark.parametrize("rounds", [0, -1, 101, True])
def test_bad_rounds_are_input_errors(rounds: int) -> None:
    with pytest.raises(InputError, match="rounds"):
        runner.RunOptions(rounds=rounds)


def test_a_journal_holding_every_round_is_written_without_running(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "r.csv"
    four = runner.RunOptions(threads=1, warmup_s=0.0, passes=("forward",), rounds=4)
    with results.ResultWriter(path, "new") as writer, pytest.raises(KeyboardInterrupt):
        execute([Drifting(clock)], clock, options=four, sink=Order(stop_after=3), writer=writer,
                journal=rounds.Journal(path, "new"))  # fmt: skip
    again = Drifting(clock)
    with results.ResultWriter(path, "resume") as writer:
        rows = execute([again], clock, writer=writer, journal=rounds.Journal(path, "resume"))
    assert again.preparations == 0 and [r["rounds"] for r in rows] == [3]
    assert len(results.read_results(path)) == 1
