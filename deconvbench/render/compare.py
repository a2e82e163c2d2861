"""What ``deconvbench compare`` prints: one exporter per format behind one small interface.

As hyperfine's exporters: every format is one function from the finished result (a
:class:`~deconvbench.analysis.compare.Comparison`, or a
:class:`~deconvbench.analysis.speedups.SpeedupTable` for
``--baseline-impl``) to output, picked from a dict by name. Nothing here computes a statistic
or a verdict; the exporters only order, select and format what ``compare.py`` decided.

``table`` returns a rich renderable (the CLI shows it through ``Screen``, which handles colour
and plain output); ``markdown``, ``csv`` and ``json`` return the complete text, ending in a
newline, to be written as is (a pull-request comment, a CI artifact, a script's input).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields

from rich.console import Group, RenderableType
from rich.text import Text

from ..analysis.compare import (
    SLICE_AXES,
    VERDICTS,
    Comparison,
    RowComparison,
    worst_first,
)
from ..analysis.speedups import Speedup, SpeedupTable
from ..errors import InputError
from ..results.fields import format_value
from ..results.schema import SCHEMA_VERSION
from . import _format as f
from .fit import Column as FitColumn
from .fit import FitTable, Justify
from .glyphs import RICH, Glyphs

FORMATS = ("table", "markdown", "csv", "json")
NOTED = frozenset({"failed", "noisy", "new"})
"""Verdicts whose reason the table prints under it (the others' reasons repeat the columns)."""
MARKDOWN_MAX_ROWS = 100
"""Rows per markdown table: a GitHub comment holds 65 536 characters; the CSV holds them all."""
STYLES = {
    "failed": "bold red",
    "regressed": "red",
    "noisy": "yellow",
    "missing": "magenta",
    "new": "cyan",
    "improved": "green",
    "unchanged": "dim",
}


# --- shared text ---------------------------------------------------------------------------


def _number(value: float) -> str:
    """Three decimals near 1, where a percent matters; four significant digits beyond 10."""
    return f"{value:.3f}" if abs(value) < 10 else f.significant(value, 4)


def ratio(value: float | None, times: str = "×") -> str:
    return "" if value is None or not math.isfinite(value) else f"{_number(value)}{times}"


def interval(low: float | None, high: float | None, dash: str = "–") -> str:
    if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
        return ""
    return f"{_number(low)}{dash}{_number(high)}"


def p_value(p: float | None) -> str:
    if p is None:
        return ""
    return "<1e-4" if p < 1e-4 else f"{p:.2g}"


def _ms(value: float | None) -> str:
    return f.ms(value) if value is not None and math.isfinite(value) else ""


def headline(comparison: Comparison) -> str:
    """One line: what the gate decided and why."""
    gating = comparison.gating
    bad = [f"{comparison.counts[v]} {v}" for v in VERDICTS if v in gating and comparison.counts[v]]
    return ", ".join(bad) + " (gate fails)" if bad else "no regressions (gate passes)"


def _method(comparison: Comparison) -> str:
    """How the rows with numbers were judged: the samples, the rounds, or some of each."""
    rounds = {r.test for r in comparison.rows if r.test and r.test != "mann-whitney"}
    samples = any(r.test == "mann-whitney" for r in comparison.rows)
    by_rounds = "fastest round against fastest round, t-test on the rounds' spread"
    if rounds and samples:
        return f"rows with rounds: {by_rounds}; others: two-sided Mann-Whitney U"
    return by_rounds if rounds else "two-sided Mann-Whitney U"


def resolution(comparison: Comparison) -> float | None:
    """The median half-width of the rows' intervals, relative: changes much smaller than this
    can't be told from noise in these files (None: no interval)."""
    widths = sorted(
        math.sqrt(r.ratio_ci_high / r.ratio_ci_low) - 1.0
        for r in comparison.rows
        if r.ratio_ci_low is not None and r.ratio_ci_high is not None and r.ratio_ci_low > 0
    )
    return widths[len(widths) // 2] if widths else None


def settings(comparison: Comparison) -> str:
    norm = "; candidate times scaled to the baseline's GEMM peak" * (comparison.normalize == "peak")
    typical = resolution(comparison)
    seen = f"; typical {1 - comparison.alpha:.0%} CI half-width {typical:.1%}" if typical else ""
    return (
        f"threshold {comparison.threshold}, alpha {comparison.alpha:g} ({_method(comparison)})"
        f"{seen}; ratio = candidate / baseline, above 1 is slower{norm}"
    )


def counts_line(comparison: Comparison) -> str:
    parts = [f"{comparison.counts[v]} {v}" for v in VERDICTS if comparison.counts[v]]
    return f"{len(comparison.rows)} rows: " + (", ".join(parts) if parts else "none")


def geomean_line(comparison: Comparison, times: str = "×") -> str:
    if comparison.geomean is None:
        return "no row was timed in both files"
    g, n = comparison.geomean
    return f"geomean ratio {ratio(g, times)} over {n} rows timed in both"


Column = tuple[str, Callable[[RowComparison], str]]


def _columns(comparison: Comparison, times: str = "×", dash: str = "–") -> list[Column]:
    """The row table's columns; dtype only when the rows have more than one."""
    columns: list[Column] = [
        ("verdict", lambda r: r.verdict),
        ("case", lambda r: f"{r.suite}/{r.case}"),
        ("implementation", lambda r: r.implementation),
        ("pass", lambda r: r.pass_),
        ("dtype", lambda r: r.dtype),
        ("baseline ms", lambda r: _ms(r.baseline_ms)),
        ("candidate ms", lambda r: _ms(r.candidate_ms)),
        ("ratio", lambda r: ratio(r.ratio, times)),
        (
            f"{1 - comparison.alpha:.0%} CI",
            lambda r: interval(r.ratio_ci_low, r.ratio_ci_high, dash),
        ),
        ("p", lambda r: p_value(r.p_value)),
        ("why", lambda r: r.reason),
    ]
    if len({r.dtype for r in comparison.rows}) < 2:
        columns = [c for c in columns if c[0] != "dtype"]
    return columns


RIGHT = frozenset(
    {"baseline ms", "candidate ms", "ratio", "p", "rows", "geomean", "speedup", "median ms"}
)
ELSEWHERE = "widen the terminal, or use --format csv"
"""Where compare's columns left out at a narrow width can be read."""
FIT_COLUMNS = {c.header: c for c in (
    FitColumn("case", wrap=True), FitColumn("implementation", "strategy", wrap=True),
    FitColumn("value", wrap=True), FitColumn("median ms", "ms", "right"),
    FitColumn("baseline ms", "base ms", "right", drop=13),
    FitColumn("candidate ms", "cand ms", "right", drop=12), FitColumn("p", justify="right", drop=1),
)}  # fmt: skip
"""How the table's columns give way when the width is short (the others: never)."""


def _fit_column(header: str) -> FitColumn:
    if header.endswith("CI"):
        return FitColumn(header, "CI", "right", drop=2)
    justify: Justify = "right" if header in RIGHT else "left"
    return FIT_COLUMNS.get(header, FitColumn(header, justify=justify))


# --- table (rich) ------------------------------------------------------------------------------


def _rich_table(title: str, headers: Sequence[str], glyphs: Glyphs) -> FitTable:
    columns = [_fit_column(h) for h in headers]
    return FitTable(columns, glyphs, title=title, elsewhere=ELSEWHERE)


def comparison_table(comparison: Comparison, glyphs: Glyphs = RICH) -> RenderableType:
    """Every row, worst first, coloured by verdict; the reasons the columns do not already
    say (failed, noisy, newly measured) as notes under it, which keeps the table to one line a
    row; then the geomeans by axis."""
    columns = _columns(comparison, glyphs.times, "–" if glyphs is RICH else "-")[:-1]
    rows = _rich_table(f"compare: {headline(comparison)}", [c[0] for c in columns], glyphs)
    notes = Text()
    for r in worst_first(comparison.rows):
        cells = [get(r) for _, get in columns]
        rows.add_row(Text(cells[0], style=STYLES[r.verdict]), *cells[1:])
        if r.verdict in NOTED and not r.reason.startswith("not in "):
            label = f"{r.verdict}: {r.suite}/{r.case} {r.implementation} {r.pass_} {r.dtype}"
            notes.append(f"{label}: {r.reason}\n", style=STYLES[r.verdict])
    slices = _rich_table("geomean ratio by axis", ["axis", "value", "geomean", "rows"], glyphs)
    for axis in SLICE_AXES:
        for value, (g, n) in comparison.slices[axis].items():
            slices.add_row(axis, value, ratio(g, glyphs.times), str(n))
    counts, geomean = counts_line(comparison), geomean_line(comparison, glyphs.times)
    summary = Text(f"{counts}; {geomean}\n{settings(comparison)}")
    return Group(rows, notes, slices, summary) if notes else Group(rows, slices, summary)


def speedup_table(table: SpeedupTable, glyphs: Glyphs = RICH) -> RenderableType:
    """Every strategy's speedup per case (fastest first), then the geomean per strategy."""
    headers = ["case", "pass", "dtype", "implementation", "median ms", "speedup"]
    rows = _rich_table(f"speedup over {table.baseline_impl}", headers, glyphs)
    for s in _speedup_order(table):
        style = "bold green" if s.speedup > 1 else ""
        rows.add_row(
            f"{s.suite}/{s.case}",
            s.pass_,
            s.dtype,
            s.implementation,
            _ms(s.median_ms),
            Text(ratio(s.speedup, glyphs.times), style=style),
        )
    means = _rich_table("geomean speedup", ["implementation", "geomean", "rows"], glyphs)
    for impl, (g, n) in _geomean_order(table):
        means.add_row(impl, ratio(g, glyphs.times), str(n))
    parts: list[RenderableType] = [rows, means]
    if table.cases_without_baseline:
        lacking = ", ".join(table.cases_without_baseline)
        parts.append(Text(f"no {table.baseline_impl} result for: {lacking}", style="yellow"))
    return Group(*parts)


def _speedup_order(table: SpeedupTable) -> list[Speedup]:
    """Cases in file order, forward before backward, fastest strategy first."""
    first = {(s.suite, s.case): i for i, s in reversed(list(enumerate(table.rows)))}
    passes = {"forward": 0, "backward": 1}
    return sorted(table.rows, key=lambda s: (first[s.suite, s.case], passes.get(s.pass_, 2),
                                             s.pass_, s.dtype, -s.speedup))  # fmt: skip


def _geomean_order(table: SpeedupTable) -> list[tuple[str, tuple[float, int]]]:
    return sorted(table.geomeans.items(), key=lambda item: -item[1][0])


# --- markdown --------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if h in RIGHT or h.endswith("CI") else "---" for h in headers) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _capped(rows: Sequence[RowComparison], comparison: Comparison) -> list[str]:
    columns = _columns(comparison)
    shown = ([get(r) for _, get in columns] for r in rows[:MARKDOWN_MAX_ROWS])
    lines = _md_table([c[0] for c in columns], shown)
    if len(rows) > MARKDOWN_MAX_ROWS:
        lines += ["", f"… and {len(rows) - MARKDOWN_MAX_ROWS} more (see `--format csv`)."]
    return lines


def _details(summary: str, body: list[str]) -> list[str]:
    return ["", f"<details><summary>{summary}</summary>", "", *body, "", "</details>"]


def comparison_markdown(comparison: Comparison, glyphs: Glyphs = RICH) -> str:
    """For a pull-request comment: the decision first, the rows that need a look, the rest
    folded away."""
    ordered = worst_first(comparison.rows)
    flagged = [r for r in ordered if r.verdict != "unchanged"]
    quiet = [r for r in ordered if r.verdict == "unchanged"]
    lines = [
        f"### deconvbench compare: {headline(comparison)}",
        "",
        f"{counts_line(comparison)}; {geomean_line(comparison)}.",
        "",
        f"<sub>{settings(comparison)}.</sub>",
    ]
    if flagged:
        lines += ["", *_capped(flagged, comparison)]
    if quiet:
        lines += _details(f"{len(quiet)} unchanged rows", _capped(quiet, comparison))
    slices = [
        (axis, value, ratio(g), str(n))
        for axis in SLICE_AXES
        for value, (g, n) in comparison.slices[axis].items()
    ]
    if slices:
        axes = ", ".join(SLICE_AXES)
        lines += _details(
            f"Geomean ratio by {axes}", _md_table(["axis", "value", "geomean", "rows"], slices)
        )
    return "\n".join(lines) + "\n"


def speedup_markdown(table: SpeedupTable, glyphs: Glyphs = RICH) -> str:
    lines = [
        f"### deconvbench: speedup over {table.baseline_impl}",
        "",
        *_md_table(
            ["implementation", "geomean", "rows"],
            ((i, ratio(g), str(n)) for i, (g, n) in _geomean_order(table)),
        ),
    ]
    rows = [
        (
            f"{s.suite}/{s.case}",
            s.pass_,
            s.dtype,
            s.implementation,
            _ms(s.median_ms),
            ratio(s.speedup),
        )
        for s in _speedup_order(table)
    ]
    headers = ["case", "pass", "dtype", "implementation", "median ms", "speedup"]
    lines += _details(f"{len(rows)} rows", _md_table(headers, rows))
    if table.cases_without_baseline:
        lines += [
            "",
            f"No {table.baseline_impl} result for: {', '.join(table.cases_without_baseline)}.",
        ]
    return "\n".join(lines) + "\n"


# --- csv and json ------------------------------------------------------------------------


def _csv(records: Sequence[dict[str, object]], header: Sequence[str]) -> str:
    """The results file's text conventions (``results.fields.format_value``), one record a
    line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([format_value(r[c]) for c in header] for r in records)
    return buffer.getvalue()


def comparison_csv(comparison: Comparison, glyphs: Glyphs = RICH) -> str:
    """One record per row (the fields docs/ci.md lists), baseline order then new rows."""
    records = [r.record() for r in comparison.rows]
    header = list(records[0]) if records else _empty_header()
    return _csv(records, header)


def _empty_header() -> list[str]:
    return ["pass" if x.name == "pass_" else x.name for x in fields(RowComparison)]


def speedup_csv(table: SpeedupTable, glyphs: Glyphs = RICH) -> str:
    records = [s.record() for s in table.rows]
    header = ["suite", "case", "pass", "dtype", "implementation", "median_ms", "baseline_ms",
              "speedup"]  # fmt: skip
    return _csv(records, header)


def _finite(value: object) -> object:
    """JSON has no NaN or infinity: they become null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _json(payload: dict[str, object]) -> str:
    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return _finite(value)

    return json.dumps(clean(payload), indent=2, allow_nan=False) + "\n"


def comparison_json(comparison: Comparison, glyphs: Glyphs = RICH) -> str:
    """The summary and one record per row (the same fields as the CSV)."""
    geomean = comparison.geomean
    return _json(
        {
            "schema_version": SCHEMA_VERSION,
            "threshold": {
                "statistic": comparison.threshold.statistic,
                "fraction": comparison.threshold.fraction,
            },
            "alpha": comparison.alpha,
            "normalize": comparison.normalize,
            "gate_failed": comparison.gate_failed,
            "counts": comparison.counts,
            "geomean": None if geomean is None else {"ratio": geomean[0], "n": geomean[1]},
            "slices": {
                axis: {v: {"ratio": g, "n": n} for v, (g, n) in values.items()}
                for axis, values in comparison.slices.items()
            },
            "rows": [r.record() for r in comparison.rows],
        }
    )


def speedup_json(table: SpeedupTable, glyphs: Glyphs = RICH) -> str:
    return _json(
        {
            "schema_version": SCHEMA_VERSION,
            "baseline_impl": table.baseline_impl,
            "geomeans": {i: {"speedup": g, "n": n} for i, (g, n) in table.geomeans.items()},
            "cases_without_baseline": list(table.cases_without_baseline),
            "rows": [s.record() for s in table.rows],
        }
    )


# --- the interface -----------------------------------------------------------------------

ComparisonExporter = Callable[[Comparison, Glyphs], RenderableType]
SpeedupExporter = Callable[[SpeedupTable, Glyphs], RenderableType]
EXPORTERS: dict[str, ComparisonExporter] = {
    "table": comparison_table,
    "markdown": comparison_markdown,
    "csv": comparison_csv,
    "json": comparison_json,
}
SPEEDUP_EXPORTERS: dict[str, SpeedupExporter] = {
    "table": speedup_table,
    "markdown": speedup_markdown,
    "csv": speedup_csv,
    "json": speedup_json,
}


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise InputError(f"--format: expected one of {', '.join(FORMATS)}, got {name!r}")
    return name


def export(result: Comparison | SpeedupTable, format: str, glyphs: Glyphs = RICH) -> RenderableType:
    """``result`` in ``format``: a rich renderable for ``table``, complete text otherwise."""
    check_format(format)
    if isinstance(result, Comparison):
        return EXPORTERS[format](result, glyphs)
    return SPEEDUP_EXPORTERS[format](result, glyphs)
