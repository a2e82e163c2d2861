"""``deconvbench merge``: join shards or partial runs into one results file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..render import Screen
from ..results import merge as merging
from .app import command
from .options import plural


@command("merge")
def merge_(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="Results CSVs to join.", show_default=False),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="The merged CSV.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output.")
    ] = False,
) -> None:
    """Join shards (`run --shard I/N`) or partial runs; refuses duplicated or conflicting rows.

    Exit codes: 0 merged, 2 bad input (nothing written).
    """
    merged = merging.merge(files)
    path = merging.write(merged, output, overwrite)
    Screen.for_streams().note(
        f"merged {plural(len(files), 'file')}, {len(merged.rows)} rows → {path}"
    )
