"""Rich tables of results: one per case, the fastest strategy marked, speedups, % of peak.

Every number shown was computed by the harness and is read from the rows, or by
``analysis.speedups`` (the speedups, and which strategy each row is compared with).

A ``mismatch`` row is never shown as a result: it gets no time, no speedup and is never
marked fastest, whatever its timing columns hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text

from ..analysis.speedups import RowSpeedup, row_speedups
from ..results.schema import RowLike
from . import _format as f
from .fit import Column, FitTable
from .glyphs import PLAIN, RICH, Glyphs

__all__ = ["PLAIN", "RICH", "Glyphs", "case_table", "summary_table", "verification_table"]

PASS_ORDER = {"forward": 0, "backward": 1}


def _group_key(row: RowLike) -> tuple[str, str, str]:
    return (f.text(row, "suite"), f.text(row, "case"), f.text(row, "dtype"))


def group_by_case(rows: Iterable[RowLike]) -> list[list[RowLike]]:
    """Rows grouped by (suite, case, dtype), groups in order of first appearance."""
    groups: dict[tuple[str, str, str], list[RowLike]] = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    return list(groups.values())


def _order(row: RowLike) -> tuple[int, int, float, str]:
    """Within a pass: results by time, then failures, then what did not run."""
    st = f.status(row)
    rank = 0 if st == f.OK else 1 if f.is_failed(row) else 2
    median = f.number(row, "median_ms")
    return (
        PASS_ORDER.get(f.text(row, "pass"), 2),
        rank,
        median if median is not None and rank == 0 else float("inf"),
        f.text(row, "implementation"),
    )


def fastest(case_rows: Sequence[RowLike]) -> dict[str, RowLike]:
    """The fastest correct row per pass (the one the table marks)."""
    best: dict[str, RowLike] = {}
    for row in case_rows:
        median = f.number(row, "median_ms")
        if not f.is_ok(row) or median is None:
            continue
        pass_ = f.text(row, "pass")
        current = best.get(pass_)
        if current is None or median < (f.number(current, "median_ms") or float("inf")):
            best[pass_] = row
    return best


ELSEWHERE = "widen the terminal, or read the results CSV"
"""Where a run's columns left out at a narrow width can be read."""


def _status_label(row: RowLike) -> Text:
    """Where a row without a time has its time: the status, so no width can hide it."""
    st = f.status(row)
    if f.is_failed(row):
        return Text(st.upper(), style="bold red")
    return Text(st, style="dim")


def _note(row: RowLike, glyphs: Glyphs) -> Text | None:
    """The row's message, whole: an ok row's warnings flagged, a failure's reason in red."""
    message = f.text(row, "message")
    if not message:
        return None
    if f.is_ok(row):
        return Text(f"{glyphs.warn} {message}", style="yellow")
    return Text(message, style="red" if f.is_failed(row) else "dim")


def _caption(speedups: Sequence[RowSpeedup], glyphs: Glyphs) -> str:
    names = sorted({s.baseline for s in speedups if s.baseline is not None})
    against = (
        f"speedup vs {names[0]}"
        if len(names) == 1
        else "speedup vs the native strategy on the same device"
        if names
        else "no baseline measured"
    )
    return f"{glyphs.fastest} fastest per pass; {against}; CI: 95% interval of the median"


def _case_columns(glyphs: Glyphs) -> list[Column]:
    """The case table's columns; ``drop``: memory first, then the error, then the rates."""
    return [
        Column(""),
        Column("implementation", "strategy", wrap=True),
        Column("pass"),
        Column("median ms", "ms", "right"),
        Column(f"{glyphs.plus_minus}CI", justify="right"),
        Column("GFLOP/s", "GF/s", "right", drop=11),
        Column("% peak", "peak", "right", drop=10),
        Column("speedup", justify="right"),
        Column("rel err", "err", "right", drop=2),
        Column("mem MB", "MB", "right", drop=1),
    ]


def _case_cells(row: RowLike, marked: bool, speedup: float | None, glyphs: Glyphs) -> list[Text]:
    ok = f.is_ok(row)
    name_style = "bold green" if marked else ("" if ok else "dim")
    half = f.ci_half_width(row) if ok else None
    warned = half is not None and bool(f.text(row, "message"))
    checked = f.status(row) in (f.OK, "mismatch")
    # Verified-only rows are ok without timings: every timing cell stays empty.
    return [
        Text(glyphs.fastest if marked else "", style="bold green"),
        Text(f.text(row, "implementation"), style=name_style),
        Text(f.text(row, "pass")),
        Text(f.ms(f.number(row, "median_ms"))) if ok else _status_label(row),
        Text(f.percent(half), style="yellow" if warned else ""),
        Text(f.gflops(f.number(row, "gflops")) if ok else ""),
        Text(f.percent(f.number(row, "peak_fraction")) if ok else ""),
        Text(f.speedup(speedup, glyphs.times)),
        Text(f.error(f.number(row, "max_rel_err")) if checked else ""),
        Text(f.megabytes(f.number(row, "peak_mem_mb")) if ok else ""),
    ]


def case_table(
    case_rows: Sequence[RowLike], baseline: str | None, glyphs: Glyphs = RICH
) -> FitTable:
    """One case: every strategy and pass, fastest marked, speedup against the baseline."""
    first = case_rows[0]
    speedups = row_speedups(case_rows, baseline)
    speedup_of = {id(r): s.speedup for r, s in zip(case_rows, speedups, strict=True)}
    table = FitTable(
        _case_columns(glyphs),
        glyphs,
        title=f"{f.case_label(first)}  {f.problem_label(first)}",
        caption=_caption(speedups, glyphs),
        elsewhere=ELSEWHERE,
    )
    best = {id(r) for r in fastest(case_rows).values()}
    previous_pass = None
    for row in sorted(case_rows, key=_order):
        pass_ = f.text(row, "pass")
        if previous_pass is not None and pass_ != previous_pass:
            table.add_section()
        previous_pass = pass_
        cells = _case_cells(row, id(row) in best, speedup_of[id(row)], glyphs)
        table.add_row(*cells, note=_note(row, glyphs))
    return table


def case_tables(
    rows: Iterable[RowLike], baseline: str | None = None, glyphs: Glyphs = RICH
) -> list[FitTable]:
    return [case_table(group, baseline, glyphs) for group in group_by_case(rows)]


SUMMARY_COLUMNS = (
    Column("case", wrap=True),
    Column("pass"),
    Column("fastest", wrap=True),
    Column("median ms", "ms", "right"),
    Column("GFLOP/s", "GF/s", "right", drop=11),
    Column("% peak", "peak", "right", drop=10),
    Column("speedup", justify="right"),
    Column("baseline", wrap=True, drop=12),
)


def summary_table(
    rows: Iterable[RowLike], baseline: str | None = None, glyphs: Glyphs = RICH
) -> FitTable:
    """The winner of every case and pass, and how it compares with the baseline."""
    table = FitTable(SUMMARY_COLUMNS, glyphs, title="fastest per case", elsewhere=ELSEWHERE)
    for group in group_by_case(rows):
        winners = fastest(group)
        speedups = {id(r): s for r, s in zip(group, row_speedups(group, baseline), strict=True)}
        for pass_ in sorted(winners, key=lambda p: PASS_ORDER.get(p, 2)):
            row = winners[pass_]
            table.add_row(
                f.case_label(row),
                pass_,
                Text(f.text(row, "implementation"), style="bold green"),
                f.ms(f.number(row, "median_ms")),
                f.gflops(f.number(row, "gflops")),
                f.percent(f.number(row, "peak_fraction")),
                f.speedup(speedups[id(row)].speedup, glyphs.times),
                speedups[id(row)].baseline or "",
            )
    return table


VERIFICATION_COLUMNS = (
    Column("case", wrap=True),
    Column("implementation", "strategy", wrap=True),
    Column("pass"),
    Column("status"),
    Column("max abs err", "abs err", "right", drop=1),
    Column("max rel err", "rel err", "right"),
)


def verification_table(rows: Iterable[RowLike], glyphs: Glyphs = RICH) -> FitTable:
    """``deconvbench verify``: the largest errors against the float64 reference; why a row
    failed or did not run under it when the width is short."""
    table = FitTable(VERIFICATION_COLUMNS, glyphs, title="verification", elsewhere=ELSEWHERE)
    for group in group_by_case(rows):
        table.add_section()
        for row in sorted(group, key=_order):
            st = f.status(row)
            checked = st in (f.OK, "mismatch")
            style = "green" if st == f.OK else "bold red" if f.is_failed(row) else "dim"
            message = f.text(row, "message")
            table.add_row(
                f.case_label(row),
                f.text(row, "implementation"),
                f.text(row, "pass"),
                Text(st, style=style),
                f.error(f.number(row, "max_abs_err")) if checked else "",
                f.error(f.number(row, "max_rel_err")) if checked else "",
                note=Text(message, style="" if f.is_failed(row) else "dim") if message else None,
            )
    return table
