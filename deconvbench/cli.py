"""The command line: thin typer commands over the library (DESIGN §4)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from . import api

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback()
def _root() -> None:
    """Benchmark and verify transposed-convolution strategies."""


@app.command("list")
def list_(
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Every strategy, available or not, and why not."""
    rows = api.implementations()
    if format == "json":
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(f"{r.name:32} {r.device:5} {'yes' if r.available else 'no':4} {r.reason}")


def main() -> None:
    app()
