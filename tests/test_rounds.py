"""``run --rounds``: the pure parts (``run/rounds.py``), the journal of unwritten rounds
(``results/journal.py``), and the run loop in rounds with a fake clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deconvbench.errors import InputError
from deconvbench.harness.clocks import FakeClock
from deconvbench.harness.measure import Measurement, Settings
from deconvbench.harness.notes import NoteKind, memory_unknown
from deconvbench.problem import Problem
from deconvbench.results.journal import Journal
from deconvbench.results.reader import read_results
from deconvbench.results.row import ResultRow
from deconvbench.results.schema import RowKey
from deconvbench.results.writer import ResultWriter
from deconvbench.run import loop
from deconvbench.run.outcome import Outcome
from deconvbench.run.rounds import (
    disagreement,
    load_rounds,
    merge_rounds,
    pooled,
    round_settings,
    save_round,
    stop_reasons,
)
from deconvbench.run.types import RunOptions, Task, round_label

from helpers import CASE, FACTS, OTHER, Fake

KEY = RowKey("s", "c", "numpy/direct", "forward", "float32")


def measured(samples: list[float], number: int = 1, stop: str = "precision") -> Measurement:
    return Measurement(tuple(samples), number, stop, 0, 0.0, "fake", Settings())  # type: ignore[arg-type]


def test_round_settings_split_the_budget_and_keep_enough_samples() -> None:
    full = Settings(budget_s=3.0, min_samples=5)
    assert round_settings(full, 1) is full
    third = round_settings(full, 3)
    assert third.budget_s == pytest.approx(1.0) and third.min_samples == 2
    assert third.precision == full.precision and third.warmup_s == full.warmup_s
    assert round_settings(Settings(min_samples=12), 3).min_samples == 4


def test_round_label() -> None:
    assert round_label(0, 1) == ""
    assert round_label(1, 3) == "round 2/3"


def test_pooled_keeps_round_order_and_takes_the_whole_runs_settings() -> None:
    rounds = [
        measured([1.0, 2.0], number=4),
        measured([3.0, 4.0, 5.0], number=9, stop="budget"),
        measured([6.0], number=2),
    ]
    whole = Settings(precision=0.5)
    m = pooled(rounds, whole)
    assert m.samples_ms == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert m.number == 9 and m.stop == "budget" and m.settings is whole
    assert stop_reasons(rounds) == "precision+budget"


def test_merging_rounds_keeps_the_first_rounds_check_and_every_measurement() -> None:
    first = Outcome("ok", max_rel_err=1e-7, peak_mem_mb=3.0, notes=(memory_unknown("x"),),
                    measurements=(measured([1.0]),))  # fmt: skip
    later = Outcome("ok", measurements=(measured([2.0]),))
    merged = merge_rounds([first, later, later])
    assert [m.samples_ms for m in merged.measurements] == [(1.0,), (2.0,), (2.0,)]
    assert merged.max_rel_err == 1e-7 and merged.peak_mem_mb == 3.0
    assert merged.notes == first.notes


def test_disagreement_names_the_spread_only_when_it_is_large() -> None:
    assert disagreement([measured([1.0, 1.0]), measured([1.05, 1.05])]) is None
    note = disagreement([measured([1.0, 1.0]), measured([1.3, 1.3]), measured([1.1])])
    assert note is not None and note.kind == NoteKind.ROUNDS_DISAGREE
    assert "1-1.3 ms" in note.text and "30% apart" in note.text
    assert disagreement([measured([1.0])]) is None


def test_journal_round_trip_resume_and_torn_line(tmp_path: Path) -> None:
    results = tmp_path / "r.csv"
    journal = Journal(results, "new")
    first = Outcome(
        "ok", max_abs_err=0.0, max_rel_err=1e-7, peak_mem_mb=2.5,
        notes=(memory_unknown("why"),), measurements=(measured([1.0, 2.0]),),
    )  # fmt: skip
    save_round(journal, KEY, 0, first)
    save_round(journal, KEY, 1, Outcome("ok", measurements=(measured([3.0], stop="budget"),)))
    save_round(journal, KEY._replace(implementation="numpy/fft"), 0, first)
    with journal.path.open("a") as f:
        f.write('{"key": ["s", "c", "numpy/direct", "forward", "float32"], "round": 2, "out')
    loaded = load_rounds(Journal(results, "resume"), Settings())
    assert set(loaded) == {KEY, KEY._replace(implementation="numpy/fft")}
    direct = loaded[KEY]
    assert sorted(direct) == [0, 1]
    assert direct[0] == first  # every field, the measurement and its note included
    assert direct[1].measurements[0].stop == "budget"
    assert load_rounds(Journal(results, "overwrite"), Settings()) == {}  # a fresh run forgets
    assert not journal.path.exists()


def test_journal_entries_of_another_format_are_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "r.csv", "new")
    journal.add({"round": 0, "row": {"suite": "s"}})  # an earlier version's entry
    journal.add({"key": list(KEY), "round": 0, "outcome": {"status": "ok"}})  # incomplete
    with journal.path.open("a") as f:
        f.write(json.dumps([1, 2]) + "\n")  # not an object
    assert list(journal.entries()) == [{"round": 0, "row": {"suite": "s"}},
                                       {"key": list(KEY), "round": 0,
                                        "outcome": {"status": "ok"}}]  # fmt: skip
    assert load_rounds(journal, Settings()) == {}


def test_journal_remove_is_idempotent(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "r.csv", "new")
    journal.remove()
    journal.add({"round": 0})
    journal.remove()
    assert not journal.path.exists()


# --- the runner in rounds (fake clock, fake strategies) ---------------------------------------



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

    def task_started(self, task: Task) -> None:
        if self.stop_after is not None and len(self.units) == self.stop_after:
            raise KeyboardInterrupt
        self.units.append((task.index, task.round))

    def task_progress(self, task: Task, samples: int, elapsed_s: float) -> None:
        pass

    def task_finished(self, task: Task, row: ResultRow | None) -> None:
        if row is not None:
            self.finals.append(str(row["implementation"]))

    def finished(self) -> None:
        pass


THREE = RunOptions(threads=1, warmup_s=0.0, passes=("forward",), rounds=3)


def execute(strategies, clock, options=THREE, sink=None, writer=None, journal=None, cases=None):  # type: ignore[no-untyped-def]
    tasks = loop.plan(cases or [CASE], strategies, options,
                      writer.done_keys() if writer else frozenset())  # fmt: skip
    return loop.execute(tasks, options, sink or Order(), writer, FACTS, clock=clock,
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
    with ResultWriter(path, "new") as writer, pytest.raises(KeyboardInterrupt):
        journal = Journal(path, "new")
        execute([first, Fake(clock)], clock, sink=Order(stop_after=3), writer=writer,
                journal=journal)  # fmt: skip
    assert read_results(path).empty  # no row is complete yet...
    kept = load_rounds(journal, Settings())  # ...but both first rounds and one second
    assert sorted(len(r) for r in kept.values()) == [1, 2]
    again = Drifting(clock)
    sink = Order()
    with ResultWriter(path, "resume") as writer:
        journal = Journal(path, "resume")
        rows = execute([again, Fake(clock)], clock, sink=sink, writer=writer, journal=journal)
    assert sink.units == [(1, 1), (0, 2), (1, 2)]  # only the rounds not yet done
    assert [r["rounds"] for r in rows] == [3, 3]
    frame = read_results(path)
    assert len(frame) == 2 and not journal.path.exists()


def test_verify_only_ignores_rounds() -> None:
    clock = FakeClock()
    sink = Order()
    options = RunOptions(threads=1, passes=("forward",), rounds=3, verify_only=True)
    rows = execute([Fake(clock)], clock, options=options, sink=sink)
    assert sink.units == [(0, 0)] and rows[0]["samples"] is None


@pytest.mark.parametrize("rounds", [0, -1, 101, True])
def test_bad_rounds_are_input_errors(rounds: int) -> None:
    with pytest.raises(InputError, match="rounds"):
        RunOptions(rounds=rounds)


def test_a_journal_holding_every_round_is_written_without_running(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "r.csv"
    four = RunOptions(threads=1, warmup_s=0.0, passes=("forward",), rounds=4)
    with ResultWriter(path, "new") as writer, pytest.raises(KeyboardInterrupt):
        execute([Drifting(clock)], clock, options=four, sink=Order(stop_after=3), writer=writer,
                journal=Journal(path, "new"))  # fmt: skip
    again = Drifting(clock)
    with ResultWriter(path, "resume") as writer:
        rows = execute([again], clock, writer=writer, journal=Journal(path, "resume"))
    assert again.preparations == 0 and [r["rounds"] for r in rows] == [3]
    assert len(read_results(path)) == 1
