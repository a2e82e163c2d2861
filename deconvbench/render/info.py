"""Tables for the informational commands: ``list``, ``suites`` and ``env``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from rich.text import Text

from ..cases.measure_table import MeasureRequest, describe
from ..registry import Implementation
from .fit import Column, FitTable
from .glyphs import RICH, Glyphs


class SuiteLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def path(self) -> object: ...
    @property
    def cases(self) -> Sequence[object]: ...
    @property
    def measure(self) -> MeasureRequest: ...


def _capabilities(caps: Mapping[str, object]) -> str:
    dims = caps.get("dims")
    dtypes = caps.get("dtypes")
    parts = []
    if isinstance(dims, list):
        parts.append("/".join(f"{d}d" for d in dims))
    if isinstance(dtypes, list):
        parts.append(",".join(str(d).replace("float", "f") for d in dtypes))
    parts.extend(f"no {what}" for what in ("backward", "groups", "dilation") if not caps.get(what))
    return " ".join(parts)


IMPLEMENTATION_COLUMNS = (
    Column("strategy", wrap=True),
    Column("device"),
    Column("available", "ok"),
    Column("takes", wrap=True),
)


def implementations_table(impls: Iterable[Implementation], glyphs: Glyphs = RICH) -> FitTable:
    """Every strategy, grouped by backend; unavailable ones dimmed with the reason; the
    description in a column of its own where it fits, else on the lines under its row."""
    table = FitTable(IMPLEMENTATION_COLUMNS, glyphs, note_header="description / why not")
    previous = None
    for impl in sorted(impls, key=lambda i: (i.backend, i.algorithm)):
        if previous is not None and impl.backend != previous:
            table.add_section()
        previous = impl.backend
        style = "" if impl.available else "dim"
        table.add_row(
            Text(impl.name, style="bold" if impl.available else "dim"),
            Text(impl.device, style=style),
            Text("yes", style="green") if impl.available else Text("no", style="dim red"),
            # A backend that failed to load has no real capabilities to show.
            Text("" if impl.algorithm == "*" else _capabilities(impl.capabilities), style=style),
            note=Text(impl.description if impl.available else impl.reason, style=style),
        )
    return table


SUITE_COLUMNS = (Column("suite", wrap=True), Column("cases", justify="right"))


def suites_table(suites: Iterable[SuiteLike], glyphs: Glyphs = RICH) -> FitTable:
    table = FitTable(SUITE_COLUMNS, glyphs, note_header="description")
    for suite in suites:
        timing = describe(suite.measure)
        note = suite.description + (f" [timing: {', '.join(timing)}]" if timing else "")
        table.add_row(Text(suite.name, style="bold"), str(len(suite.cases)), note=note)
    return table


def suite_records(suites: Iterable[SuiteLike]) -> list[dict[str, object]]:
    """``deconvbench suites --format json``: name, description, case count, file, and the
    timing settings its ``[measure]`` table asks for (only those it sets)."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "cases": len(s.cases),
            "path": str(s.path),
            "measure": {
                f.name: getattr(s.measure, f.name)
                for f in dataclasses.fields(s.measure)
                if getattr(s.measure, f.name) is not None
            },
        }
        for s in suites
    ]


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        # Device or thread-pool lists: one compact line per entry.
        return "\n".join(
            " ".join(str(v) for v in entry.values() if v not in (None, "")) for entry in value
        )
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


ENV_COLUMNS = (Column("section"), Column("fact"), Column("value", wrap=True))


def env_table(facts: Mapping[str, object], glyphs: Glyphs = RICH) -> FitTable:
    """``env.collect()`` as section / key / value; a missing section shows its reason. Values
    (paths, ISA lists, build flags) wrap after ``/``, ``-``, ``,``, ``=`` or a space."""
    table = FitTable(ENV_COLUMNS, glyphs)
    for section, content in facts.items():
        if not isinstance(content, dict):
            table.add_row(Text(section, style="bold"), "", _value(content))
            continue
        table.add_section()
        items = list(content.items()) or [("", "(none set)")]
        for index, (key, value) in enumerate(items):
            style = "yellow" if key == "reason" else ""
            name = Text(section if index == 0 else "", style="bold")
            table.add_row(name, key, Text(_value(value), style=style))
    return table


def to_json(value: object) -> str:
    """JSON for ``--format json``: stable key order, anything unknown as its string."""
    return json.dumps(value, indent=2, default=str)
