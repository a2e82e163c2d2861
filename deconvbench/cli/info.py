"""``deconvbench list``, ``suites`` and ``env``: what is here, as a table or JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import typer
from rich.console import RenderableType

from .. import env, registry
from ..api import implementations
from ..cases.suite_file import shipped_suites
from ..render import Glyphs, Screen, info
from .app import command, debugging
from .options import FormatOpt, check_format


def _show_info(
    format: str,
    records: Callable[[], object],
    table: Callable[[Any, Glyphs], RenderableType],
    data: Any,
) -> None:
    """The shape of list/suites/env: JSON records on stdout, or a table on the screen."""
    check_format(format, ("table", "json"))
    if format == "json":
        typer.echo(info.to_json(records()))
        return
    screen = Screen.for_streams()
    screen.show(table(data, screen.glyphs))


@command("list")
def list_(format: FormatOpt = "table") -> None:
    """Every strategy, available or not, and why not."""
    rows = implementations()
    _show_info(format, lambda: [asdict(r) for r in rows], info.implementations_table, rows)
    if debugging():  # a plugin that failed to load: where, in its own code
        for strategy in registry.strategies():
            if isinstance(strategy, registry.BrokenBackend) and strategy.details:
                sys.stderr.write(f"--- {strategy.name}: {strategy.reason}\n{strategy.details}")


@command("suites")
def suites_(format: FormatOpt = "table") -> None:
    """The shipped suites, with their descriptions and case counts."""
    shipped = shipped_suites()
    _show_info(format, lambda: info.suite_records(shipped), info.suites_table, shipped)


@command("env")
def env_(format: FormatOpt = "table") -> None:
    """The machine and library facts a run records in its sidecar."""
    facts = env.collect()
    _show_info(format, lambda: facts, info.env_table, facts)
