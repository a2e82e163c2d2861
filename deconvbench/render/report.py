"""Tables of ``deconvbench report``: best per case, the speedup matrix, unstable rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from ._format import gflops, ms, percent, speedup
from .fit import Column, FitTable
from .glyphs import RICH, Glyphs

ELSEWHERE = "widen the terminal, or read the results CSV"
"""Where the columns left out at a narrow width can be read."""
MATRIX_TITLE = "speedup over each device's native strategy (>1: faster)"


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


BEST_COLUMNS = (
    Column("case", wrap=True),
    Column("pass"),
    Column("dtype"),
    Column("fastest", wrap=True),
    Column("median ms", "ms", "right"),
    Column("GFLOP/s", "GF/s", "right", drop=11),
    Column("% peak", "peak", "right", drop=10),
)


def best_table(best: pd.DataFrame, glyphs: Glyphs = RICH) -> FitTable:
    table = FitTable(BEST_COLUMNS, glyphs, title="fastest per case", elsewhere=ELSEWHERE)
    for _, r in best.iterrows():
        table.add_row(
            f"{r['suite']}/{r['case']}", str(r["pass"]), str(r["dtype"]), str(r["implementation"]),
            ms(_num(r["median_ms"])), gflops(_num(r["gflops"])), percent(_num(r["peak_fraction"])),
        )  # fmt: skip
    return table


@dataclass(frozen=True)
class SpeedupMatrix:
    """Strategies down, case-pass across, each strategy's geomean next to its name.

    Where the case-pass headers don't fit, the columns are numbered, with a legend under the
    table, and split over as many tables as the width needs: no column is left out.
    """

    matrix: pd.DataFrame
    glyphs: Glyphs = RICH

    def _order(self) -> list[tuple[str, str, list[str]]]:
        """(strategy, geomean, cells), the fastest geomean first."""
        times = self.glyphs.times
        geomeans = self.matrix.apply(lambda r: math.exp(r.dropna().map(math.log).mean()), axis=1)
        return [
            (
                str(impl),
                speedup(_num(geomeans[impl]), times),
                [speedup(_num(v), times) for v in self.matrix.loc[impl]],
            )
            for impl in geomeans.sort_values(ascending=False).index
        ]

    def table(self, headers: list[str], picks: range, title: str) -> FitTable:
        columns = [Column("strategy", wrap=True), Column("geomean", justify="right")]
        columns += [Column(headers[i], justify="right") for i in picks]
        table = FitTable(columns, self.glyphs, title=title)
        for impl, geomean, cells in self._order():
            table.add_row(impl, geomean, *(cells[i] for i in picks))
        return table

    def tables(self, width: int) -> list[FitTable | Text]:
        names = [str(c) for c in self.matrix.columns]
        whole = self.table(names, range(len(names)), MATRIX_TITLE)
        if whole.natural_width() <= width:
            return [whole]
        keys = [f"[{i + 1}]" for i in range(len(names))]
        chunks = _chunks(self, keys, width)
        out: list[FitTable | Text] = []
        for n, picks in enumerate(chunks):
            part = f" (columns {picks.start + 1}-{picks.stop} of {len(keys)})" * (len(chunks) > 1)
            out.append(self.table(keys, picks, MATRIX_TITLE + part if n == 0 else part.strip()))
        legend = "\n".join(f"{k} {name}" for k, name in zip(keys, names, strict=True))
        out.append(Text(legend, style="dim"))
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.tables(options.max_width)  # each table ends in a blank line


def _chunks(matrix: SpeedupMatrix, keys: list[str], width: int) -> list[range]:
    """The numbered columns in runs that fit ``width`` (at least one column a run)."""
    chunks: list[range] = []
    start = 0
    while start < len(keys):
        stop = start + 1
        while (
            stop < len(keys)
            and matrix.table(keys, range(start, stop + 1), "").layout(width).total() <= width
        ):
            stop += 1
        chunks.append(range(start, stop))
        start = stop
    return chunks


def speedup_table(matrix: pd.DataFrame, glyphs: Glyphs = RICH) -> SpeedupMatrix:
    """Strategies down, case-pass across; each strategy's geomean right after its name."""
    return SpeedupMatrix(matrix, glyphs)


def _message(value: object) -> str:
    return value if isinstance(value, str) else ""


UNSTABLE_COLUMNS = (
    Column("case", wrap=True),
    Column("pass"),
    Column("strategy", wrap=True),
    Column("median ms", "ms", "right"),
)


def unstable_table(unstable: pd.DataFrame, glyphs: Glyphs = RICH) -> FitTable:
    columns = [*UNSTABLE_COLUMNS, Column(f"{glyphs.plus_minus}CI", justify="right")]
    table = FitTable(columns, glyphs, title="unstable rows", note_header="why")
    for _, r in unstable.iterrows():
        table.add_row(
            f"{r['suite']}/{r['case']}", str(r["pass"]), str(r["implementation"]),
            ms(_num(r["median_ms"])), percent(_num(r["ci_rel_halfwidth"])),
            note=Text(_message(r["message"]), style="yellow"),
        )  # fmt: skip
    return table
