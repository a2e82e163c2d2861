"""The "model total" table: a model's time per strategy, and the best-per-layer mix."""

from __future__ import annotations

from rich.text import Text

from ..analysis.model_totals import MIX, ModelTotals, Total
from . import _format as f
from .fit import Column, FitTable
from .glyphs import RICH, Glyphs

MAX_CHOICES = 12
"""Cases up to which the table says which strategy the mix runs each with."""

COLUMNS = (
    Column("strategy", wrap=True),
    Column("forward ms", "fwd ms", "right"),
    Column("backward ms", "bwd ms", "right"),
    Column("both ms", justify="right"),
    Column("speedup", justify="right"),
)


def _speedup(totals: ModelTotals, total: Total) -> float | None:
    """Over the baseline's total: both passes where both are known, else forward."""
    base = next((t for t in totals.totals if t.implementation == totals.baseline), None)
    if base is None:
        return None
    for mine, theirs in ((total.both_ms, base.both_ms), (total.forward_ms, base.forward_ms)):
        if mine and theirs:
            return theirs / mine
    return None


def _caption(totals: ModelTotals) -> Text:
    """How the totals are made, and which strategy the mix runs each case with."""
    against = totals.baseline or "no baseline measured"
    lines = [
        f"count x median over the model's cases; strategies ok on every case of a pass; "
        f"speedup vs {against}"
    ]
    for pass_, picks in totals.choices.items():
        if picks and len(picks) <= MAX_CHOICES:
            chosen = ", ".join(f"{case} {impl}" for case, impl in picks.items())
            lines.append(f"{MIX}, {pass_}: {chosen}")
    return Text("\n".join(lines), style="dim")


def model_total_table(totals: ModelTotals, glyphs: Glyphs = RICH) -> FitTable:
    title = (
        f"model total: {totals.suite} ({totals.layers} layers in {totals.cases} cases, "
        f"{totals.dtype}, {totals.device})"
    )
    table = FitTable(COLUMNS, glyphs, title=title, caption=_caption(totals))
    for total in (totals.mix, *totals.totals):
        style = "bold green" if total.implementation == MIX else ""
        table.add_row(
            Text(total.implementation, style=style),
            f.ms(total.forward_ms), f.ms(total.backward_ms), f.ms(total.both_ms),
            f.speedup(_speedup(totals, total), glyphs.times),
        )  # fmt: skip
    return table
