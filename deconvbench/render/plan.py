"""The plan as a table (``deconvbench plan``, ``deconvbench plan show``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from ..results.plan_file import Plan, PlanEntry
from . import _format as f
from .fit import Column, FitTable
from .glyphs import RICH, Glyphs


def _interval(entry: PlanEntry) -> str:
    if entry.ci_low is None or entry.ci_high is None:
        return ""
    return f"{f.significant(entry.ci_low, 3)}-{f.significant(entry.ci_high, 3)}"


def _contenders(rule: Mapping[str, object]) -> str:
    """The strategy globs the plan was limited to, as the title's tail."""
    parts = []
    for key, word in (("impl", "only"), ("exclude", "never")):
        globs = rule.get(key)
        if isinstance(globs, list) and globs:
            parts.append(f"{word} {', '.join(map(str, globs))}")
    return "".join(f"; {p}" for p in parts)


PLAN_COLUMNS = (
    Column("problem", wrap=True),
    Column("device"),
    Column("pass"),
    Column("run", wrap=True),
    Column("native ms", "native", "right"),
    Column("its ms", "its", "right", drop=11),
    Column("speedup", justify="right"),
    Column("95% CI", "CI", "right", drop=12),
)
"""``drop``: its time first (native ms / speedup gives it), then the speedup's interval."""


def plan_table(plan: Plan, glyphs: Glyphs = RICH) -> FitTable:
    """One row per entry, problems in the plan's order; chosen strategies in bold green; why
    each was chosen (or native kept) beside the row, or under it where the width is short."""
    rule = plan.rule
    title = (
        f"plan: {len(plan.entries)} (problem, pass) entries, "
        f"{sum(e.replaces_native for e in plan.entries)} not native "
        f"(rule: {100 * float(str(rule.get('threshold', 0))):g}% on the "
        f"{rule.get('statistic', '?')}, alpha {rule.get('alpha', '?')}{_contenders(rule)})"
    )
    table = FitTable(
        PLAN_COLUMNS, glyphs, title=title, note_header="why",
        elsewhere="widen the terminal, or read the plan's JSON",
    )  # fmt: skip
    for entry in plan.entries:
        chosen = entry.replaces_native
        table.add_row(
            str(entry.problem),
            entry.device,
            entry.pass_,
            Text(entry.strategy, style="bold green" if chosen else ""),
            f.ms(entry.native_ms),
            f.ms(entry.strategy_ms) if chosen else "",
            f.speedup(entry.speedup, glyphs.times) if chosen else "",
            _interval(entry) if chosen else "",
            note=Text(entry.reason, style="" if chosen else "dim"),
        )
    return table


def machine_lines(plan: Plan, differences: Sequence[str] | None) -> RenderableType:
    """Where the plan holds: its machine, and whether this one is it (None: not checked)."""
    fp = plan.fingerprint
    made = (
        f"measured on: {fp.get('cpu')} ({fp.get('logical_cores')} cores), "
        f"{fp.get('threads')} threads, torch {fp.get('torch')}, numpy {fp.get('numpy')}, "
        f"deconvbench {fp.get('deconvbench')}"
    )
    gpus = fp.get("gpus")
    if gpus:
        made += f", GPU {', '.join(map(str, gpus))}"  # type: ignore[call-overload]
    lines = [Text(made, style="dim")]
    if differences is not None:
        if differences:
            lines.append(
                Text(
                    "this machine differs (deconvbench.nn runs native unless forced): "
                    + "; ".join(differences),
                    style="yellow",
                )
            )
        else:
            lines.append(Text("this machine matches the plan's fingerprint", style="green"))
    return Group(*lines)
