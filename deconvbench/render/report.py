"""Tables of ``deconvbench report``: best per case, the speedup matrix, unstable rows."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from ._format import gflops, ms, percent, speedup
from .table import RICH, Glyphs


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_table(best: pd.DataFrame, glyphs: Glyphs = RICH) -> Table:
    table = Table(title="fastest per case", box=glyphs.box, pad_edge=False)
    for name in ("case", "pass", "dtype", "fastest", "median ms", "GFLOP/s", "% peak"):
        table.add_column(
            name, no_wrap=True, justify="right" if "ms" in name or "/" in name else "left"
        )
    for _, r in best.iterrows():
        table.add_row(
            f"{r['suite']}/{r['case']}", str(r["pass"]), str(r["dtype"]), str(r["implementation"]),
            ms(_num(r["median_ms"])), gflops(_num(r["gflops"])), percent(_num(r["peak_fraction"])),
        )  # fmt: skip
    return table


def speedup_table(matrix: pd.DataFrame, glyphs: Glyphs = RICH) -> Table:
    """Strategies down, case-pass across; the geomean of each strategy's row at the end."""
    table = Table(
        title="speedup over each device's native strategy (>1: faster)",
        box=glyphs.box, pad_edge=False,
    )  # fmt: skip
    table.add_column("strategy", no_wrap=True)
    for column in matrix.columns:
        table.add_column(str(column), justify="right", no_wrap=True)
    table.add_column("geomean", justify="right", no_wrap=True)
    geomeans = matrix.apply(lambda r: math.exp(r.dropna().map(math.log).mean()), axis=1)
    for impl in geomeans.sort_values(ascending=False).index:
        cells = [speedup(_num(v), glyphs.times) for v in matrix.loc[impl]]
        table.add_row(str(impl), *cells, speedup(_num(geomeans[impl]), glyphs.times))
    return table


def unstable_table(unstable: pd.DataFrame, glyphs: Glyphs = RICH) -> Table:
    table = Table(title="unstable rows", box=glyphs.box, pad_edge=False)
    for name in ("case", "pass", "strategy", "median ms", f"{glyphs.plus_minus}CI", "why"):
        table.add_column(name, overflow="fold")
    for _, r in unstable.iterrows():
        table.add_row(
            f"{r['suite']}/{r['case']}", str(r["pass"]), str(r["implementation"]),
            ms(_num(r["median_ms"])), percent(_num(r["ci_rel_halfwidth"])), str(r["message"]),
        )  # fmt: skip
    return table
