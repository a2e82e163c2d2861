"""Rendering: golden tables from fixed rows, the fastest mark, speedups, progress sinks."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from deconvbench.analysis.speedups import RowSpeedup, row_speedups
from deconvbench.cases.case import Case
from deconvbench.problem import Problem
from deconvbench.render import PLAIN, RICH, Glyphs
from deconvbench.render import _format as fmt
from deconvbench.render import table as tables
from deconvbench.render.plain import PlainProgress, use_plain
from deconvbench.render.progress import LiveProgress
from deconvbench.results.schema import COLUMNS

from helpers import Row

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DECONVBENCH_UPDATE_GOLDEN") == "1"
"""Set to 1 to rewrite the golden files after a deliberate change of the table's look."""

PROBLEM = dict(
    batch=64, in_channels=512, out_channels=256, groups=1, input="4x4", kernel="4x4",
    stride="2x2", padding="1x1", output_padding="0x0", dilation="1x1", bias=False,
    output="8x8", dtype="float32",
)  # fmt: skip


def row(impl: str, pass_: str = "forward", status: str = "ok", **values: object) -> Row:
    """A full results row (every column), as the runner writes it."""
    backend, _, algorithm = impl.partition("/")
    base: Row = dict.fromkeys(COLUMNS)
    base.update(PROBLEM)
    base.update(
        schema_version=1, suite="dcgan", case="g2", implementation=impl, backend=backend,
        **{"pass": pass_},
        algorithm=algorithm, device="cuda" if backend == "torch-cuda" else "cpu", status=status,
        message="", threads=2, flops=2 * 64 * 512 * 256 * 16 * 16,
    )  # fmt: skip
    if status == "ok" and "median_ms" in values:
        median = float(values["median_ms"])  # type: ignore[arg-type]
        half = float(values.pop("half", 0.01))  # type: ignore[arg-type]
        base.update(
            samples=20,
            ci_low_ms=median * (1 - half),
            ci_high_ms=median * (1 + half),
            gflops=base["flops"] / median / 1e6,  # type: ignore[operator]
            max_rel_err=1.5e-7,
            max_abs_err=2.5e-6,
            peak_mem_mb=12.5,
        )
    base.update(values)
    return base


def dcgan_rows() -> list[Row]:
    """One case with every kind of row: results, a mismatch, an error, unsupported, a warning."""
    return [
        row("numpy/direct", median_ms=40.0, peak_fraction=0.05),
        row("torch-cpu/native", median_ms=8.0, peak_fraction=0.25),
        row("numpy/subpixel", median_ms=5.0, peak_fraction=0.4, half=0.08,
            message="CI half-width 8.0% above the 2.0% target"),
        # A mismatch keeps its (fast!) timing columns in this fixture on purpose: the table
        # must still never show it as a result or mark it fastest.
        row("numba/direct", status="mismatch", median_ms=1.0, max_rel_err=0.5, max_abs_err=3.0,
            message="output: max rel err 5.0e-01 > tolerance 1.0e-05"),
        row("numpy/fft", status="error", message="RuntimeError: boom"),
        row("numpy/zero-insert", status="unsupported", message="numpy/zero-insert: no 3-D"),
        row("torch-cpu/native", "backward", median_ms=20.0, peak_fraction=0.3),
        row("numpy/direct", "backward", median_ms=30.0, peak_fraction=0.2),
    ]  # fmt: skip


def render(renderable: object, glyphs: Glyphs = RICH, width: int = 140) -> str:
    """What a no-colour terminal of a fixed width shows."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None,
                      force_terminal=False, legacy_windows=False)  # fmt: skip
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing; written now, check it and rerun")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}"


def test_case_table_golden() -> None:
    (table,) = tables.case_tables(dcgan_rows())
    check_golden("case_table.txt", render(table))


def test_case_table_plain_golden_is_ascii() -> None:
    (table,) = tables.case_tables(dcgan_rows(), glyphs=PLAIN)
    text = render(table, PLAIN)
    check_golden("case_table_plain.txt", text)
    assert text.isascii()


def test_summary_table_golden() -> None:
    rows = [
        *dcgan_rows(),
        row("numpy/direct", case="g3", median_ms=10.0),
        row("torch-cpu/native", case="g3", median_ms=12.0),
    ]
    check_golden("summary_table.txt", render(tables.summary_table(rows)))


def test_verification_table_golden() -> None:
    rows = [r for r in dcgan_rows() if r["pass"] == "forward"]
    for r in rows:
        for key in ("median_ms", "gflops", "ci_low_ms", "ci_high_ms", "samples"):
            r[key] = None
    check_golden("verification_table.txt", render(tables.verification_table(rows)))


def test_fastest_is_the_quickest_ok_row_never_a_mismatch() -> None:
    best = tables.fastest(dcgan_rows())
    assert best["forward"]["implementation"] == "numpy/subpixel"
    assert best["backward"]["implementation"] == "torch-cpu/native"


def speedup_of(rows: list[Row], row: Row, baseline: str | None) -> RowSpeedup:
    return row_speedups(rows, baseline)[[id(r) for r in rows].index(id(row))]


def test_speedup_against_the_native_strategy_on_the_same_device() -> None:
    rows = dcgan_rows()
    subpixel = rows[2]
    assert speedup_of(rows, subpixel, None).speedup == pytest.approx(8.0 / 5.0)
    assert speedup_of(rows, subpixel, "numpy/direct").speedup == pytest.approx(40.0 / 5.0)
    assert speedup_of(rows, rows[3], None).speedup is None  # a mismatch gets no speedup
    gpu = row("torch-cuda/native", median_ms=0.5)
    # A GPU row is compared with the GPU's native strategy, not the CPU's.
    assert speedup_of([*rows, gpu], gpu, None).baseline == "torch-cuda/native"
    assert speedup_of([*rows, gpu], rows[0], None).speedup == pytest.approx(8.0 / 40.0)


def test_no_baseline_measured_means_no_speedup() -> None:
    rows = [r for r in dcgan_rows() if r["implementation"] != "torch-cpu/native"]
    assert all(s.speedup is None for s in row_speedups(rows, None))
    assert "vs " not in render(tables.case_table(rows, None))


def test_mismatch_row_shows_no_time_even_when_the_row_has_one() -> None:
    text = render(tables.case_table(dcgan_rows(), None))
    (line,) = [ln for ln in text.splitlines() if "numba/direct" in ln]
    assert "MISMATCH" in line and "1.000" not in line and "★" not in line


def test_a_narrow_terminal_still_shows_every_status() -> None:
    text = render(tables.case_table(dcgan_rows(), None), width=90)
    for word in ("MISMATCH", "ERROR", "unsupport"):
        assert word in text


def test_rows_read_back_from_csv_render_the_same(tmp_path: Path) -> None:
    from deconvbench.results.reader import read_results
    from deconvbench.results.writer import ResultWriter

    rows = dcgan_rows()
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    back = read_results(path).to_dict("records")
    assert render(tables.case_tables(back)[0]) == render(tables.case_tables(rows)[0])


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [(1234.5678, 4, "1235"), (1.23456, 4, "1.235"), (0.00123456, 3, "0.00123"), (0.0, 3, "0")],
)
def test_significant(value: float, digits: int, text: str) -> None:
    assert fmt.significant(value, digits) == text


def test_number_accepts_csv_strings_and_nan() -> None:
    assert fmt.number({"a": "1.5"}, "a") == 1.5
    assert fmt.number({"a": float("nan")}, "a") is None
    assert fmt.number({"a": ""}, "a") is None
    assert fmt.number({}, "a") is None


# --- progress sinks --------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeStrategy:
    name: str


@dataclass(frozen=True)
class FakeTask:
    index: int
    case: Case
    strategy: FakeStrategy
    pass_: str = "forward"
    extra: dict[str, object] = field(default_factory=dict, compare=False)


def _tasks() -> list[FakeTask]:
    p = Problem.create(batch=1, in_channels=2, out_channels=2, input=(4, 4), kernel=3)
    cases = [Case("smoke", "a", p), Case("smoke", "b", p)]
    impls = [FakeStrategy("numpy/direct"), FakeStrategy("torch-cpu/native")]
    return [FakeTask(i, c, s) for i, (c, s) in enumerate((c, s) for c in cases for s in impls)]


class TickClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def test_plain_progress_prints_one_line_per_finished_task() -> None:
    stream = io.StringIO()
    tasks = _tasks()
    sink = PlainProgress(stream, tasks, clock=TickClock())
    sink.started(len(tasks))
    for t in tasks:
        sink.task_started(t)
        sink.task_progress(t, 3, 0.1)
        sink.task_finished(t, row(t.strategy.name, suite="smoke", case=t.case.name, median_ms=2.0))
    sink.finished()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "running 4 measurements over 2 cases"
    assert lines[1].startswith("[1/4] case 1/2 smoke/a numpy/direct forward: ok 2.000 ms +/-1.0%")
    assert lines[4].startswith("[4/4] case 2/2 smoke/b torch-cpu/native forward")
    assert lines[-1].startswith("finished 4 measurements in ")
    assert len(lines) == 6 and stream.getvalue().isascii()


def test_live_progress_refreshes_only_when_called_and_starts_no_thread() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, color_system=None)
    tasks = _tasks()
    clock = TickClock()
    sink = LiveProgress(console, tasks, clock=clock)
    before = threading.active_count()
    sink.started(len(tasks))
    # rich's auto-refresh would be a thread redrawing while CPU timings run
    assert threading.active_count() == before
    for t in tasks:
        sink.task_started(t)
        sink.task_progress(t, 7, 0.5)
        sink.task_finished(t, row(t.strategy.name, suite="smoke", case=t.case.name, median_ms=2.0))
    assert threading.active_count() == before
    sink.finished()
    sink.close()  # idempotent: the CLI closes again on every exit path
    out = buffer.getvalue()
    assert "case 2/2" in out and "smoke/b torch-cpu/native forward" in out
    assert "smoke/a numpy/direct forward: ok 2.000 ms" in out


def test_live_progress_rate_limits_sample_redraws() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    tasks = _tasks()
    now = [0.0]
    sink = LiveProgress(console, tasks, clock=lambda: now[0])
    redraws: list[float] = []
    sink._progress.refresh = lambda: redraws.append(now[0])  # type: ignore[method-assign]
    sink.started(len(tasks))
    before = len(redraws)
    sink.task_started(tasks[0])  # task boundaries always redraw
    assert len(redraws) == before + 1
    for step in range(1, 10):  # a sample every 30 ms
        now[0] = step * 0.03
        sink.task_progress(tasks[0], step, now[0])
    # 0.27 s of samples: redrawn at 0.12 and 0.24 (>= 0.1 s apart), not nine times
    assert redraws[before + 1 :] == pytest.approx([0.12, 0.24])
    sink.task_finished(tasks[0], row("numpy/direct", median_ms=1.0))
    assert len(redraws) == before + 4
    sink.close()


@pytest.mark.parametrize(
    ("tty", "no_color", "plain"),
    [(True, "", False), (False, "", True), (True, "1", True)],
)
def test_use_plain(tty: bool, no_color: str, plain: bool) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    environ = {"NO_COLOR": no_color} if no_color else {}
    assert use_plain(Stream(), Stream(), environ) is plain
