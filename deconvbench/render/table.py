"""Rich tables of results: one per case, the fastest strategy marked, speedups, % of peak.

Every number shown was computed by the harness and is read from the rows, or by
``analysis.speedups`` (the speedups, and which strategy each row is compared with).

A ``mismatch`` row is never shown as a result: it gets no time, no speedup and is never
marked fastest, whatever its timing columns hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import OverflowMethod
from rich.table import Table
from rich.text import Text

from ..analysis.speedups import RowSpeedup, row_speedups
from ..results.schema import RowLike
from . import _format as f

PASS_ORDER = {"forward": 0, "backward": 1}


@dataclass(frozen=True)
class Glyphs:
    """The few non-ASCII marks, swapped for ASCII in plain output."""

    fastest: str
    times: str
    warn: str
    plus_minus: str
    box: box.Box
    cut: OverflowMethod


SIMPLE_HEAD_ASCII = box.Box(
    "    \n    \n -- \n    \n    \n    \n    \n    \n",
    ascii=True,
)
"""rich's SIMPLE_HEAD drawn with '-': a rule under the header, a blank line between sections."""

RICH = Glyphs(fastest="★", times="×", warn="⚠", plus_minus="±", box=box.SIMPLE_HEAD, cut="ellipsis")
PLAIN = Glyphs(
    fastest="*", times="x", warn="!", plus_minus="+/-", box=SIMPLE_HEAD_ASCII, cut="crop"
)


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


NOTE_WIDTH = 48
"""Instability warnings are cut to this many characters (the CSV's ``message`` has them all)."""


def _status_label(row: RowLike) -> Text:
    """Where a row without a time has its time: the status, so no width can hide it."""
    st = f.status(row)
    if f.is_failed(row):
        return Text(st.upper(), style="bold red")
    return Text(st, style="dim")


def _note(row: RowLike, glyphs: Glyphs) -> Text:
    message = f.text(row, "message")
    if not message:
        return Text("")
    if f.is_ok(row):
        # An ok row's message holds the harness's instability warnings: a flag to notice,
        # cut short so the table stays one line per row (the CSV has them all).
        note = f"{glyphs.warn} {message}"
        if len(note) > NOTE_WIDTH:
            note = note[: NOTE_WIDTH - 3] + "..."
        return Text(note, style="yellow", no_wrap=True, overflow=glyphs.cut)
    # Why a row failed or did not run is the point of the row: shown whole.
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


def case_table(case_rows: Sequence[RowLike], baseline: str | None, glyphs: Glyphs = RICH) -> Table:
    """One case: every strategy and pass, fastest marked, speedup against the baseline."""
    first = case_rows[0]
    speedups = row_speedups(case_rows, baseline)
    speedup_of = {id(r): s.speedup for r, s in zip(case_rows, speedups, strict=True)}
    table = Table(
        title=f"{f.case_label(first)}  {f.problem_label(first)}",
        title_justify="left",
        caption=_caption(speedups, glyphs),
        caption_justify="left",
        box=glyphs.box,
        pad_edge=False,
    )
    table.add_column("", no_wrap=True)
    table.add_column("implementation", no_wrap=True)
    table.add_column("pass", no_wrap=True)
    table.add_column("median ms", justify="right", no_wrap=True)
    table.add_column(f"{glyphs.plus_minus}CI", justify="right", no_wrap=True)
    table.add_column("GFLOP/s", justify="right", no_wrap=True)
    table.add_column("% peak", justify="right", no_wrap=True)
    table.add_column("speedup", justify="right", no_wrap=True)
    table.add_column("rel err", justify="right", no_wrap=True)
    table.add_column("mem MB", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    best = {id(r) for r in fastest(case_rows).values()}
    previous_pass = None
    for row in sorted(case_rows, key=_order):
        pass_ = f.text(row, "pass")
        if previous_pass is not None and pass_ != previous_pass:
            table.add_section()
        previous_pass = pass_
        ok = f.is_ok(row)
        marked = id(row) in best
        name_style = "bold green" if marked else ("" if ok else "dim")
        half = f.ci_half_width(row) if ok else None
        # Verified-only rows are ok without timings: every timing cell stays empty.
        table.add_row(
            Text(glyphs.fastest if marked else "", style="bold green"),
            Text(f.text(row, "implementation"), style=name_style),
            pass_,
            f.ms(f.number(row, "median_ms")) if ok else _status_label(row),
            Text(
                f.percent(half),
                style="yellow" if half is not None and f.text(row, "message") else "",
            ),
            f.gflops(f.number(row, "gflops")) if ok else "",
            f.percent(f.number(row, "peak_fraction")) if ok else "",
            f.speedup(speedup_of[id(row)], glyphs.times),
            f.error(f.number(row, "max_rel_err")) if f.status(row) in (f.OK, "mismatch") else "",
            f.megabytes(f.number(row, "peak_mem_mb")) if ok else "",
            _note(row, glyphs),
        )
    return table


def case_tables(
    rows: Iterable[RowLike], baseline: str | None = None, glyphs: Glyphs = RICH
) -> list[Table]:
    return [case_table(group, baseline, glyphs) for group in group_by_case(rows)]


def summary_table(
    rows: Iterable[RowLike], baseline: str | None = None, glyphs: Glyphs = RICH
) -> Table:
    """The winner of every case and pass, and how it compares with the baseline."""
    table = Table(title="fastest per case", title_justify="left", box=glyphs.box, pad_edge=False)
    for name, justify in (
        ("case", "left"),
        ("pass", "left"),
        ("fastest", "left"),
        ("median ms", "right"),
        ("GFLOP/s", "right"),
        ("% peak", "right"),
        ("speedup", "right"),
        ("baseline", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
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


def verification_table(rows: Iterable[RowLike], glyphs: Glyphs = RICH) -> Table:
    """``deconvbench verify``: the largest errors against the float64 reference."""
    table = Table(title="verification", title_justify="left", box=glyphs.box, pad_edge=False)
    table.add_column("case", no_wrap=True)
    table.add_column("implementation", no_wrap=True)
    table.add_column("pass", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("max abs err", justify="right", no_wrap=True)
    table.add_column("max rel err", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold")
    for index, group in enumerate(group_by_case(rows)):
        if index:
            table.add_section()
        for row in sorted(group, key=_order):
            st = f.status(row)
            checked = st in (f.OK, "mismatch")
            style = "green" if st == f.OK else "bold red" if f.is_failed(row) else "dim"
            table.add_row(
                f.case_label(row),
                f.text(row, "implementation"),
                f.text(row, "pass"),
                Text(st, style=style),
                f.error(f.number(row, "max_abs_err")) if checked else "",
                f.error(f.number(row, "max_rel_err")) if checked else "",
                Text(f.text(row, "message"), style="" if f.is_failed(row) else "dim"),
            )
    return table
