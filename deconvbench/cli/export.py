"""``deconvbench export``: a run's rows as series for a benchmark tracker.

The points are computed in ``analysis/export.py``, the formats written by ``render/export.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..analysis.export import series_of_frame
from ..errors import InputError
from ..render import Screen
from ..render import export as export_out
from ..results.reader import read_results
from .app import command
from .options import check_format, plural


def _write(text: str, output: Path, overwrite: bool) -> None:
    """Atomically: a tracker never reads half a file."""
    if output.is_dir():
        raise InputError(f"--output {output}: is a directory")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: exists; use --overwrite to replace it")
    directory = output.parent if str(output.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as e:
        raise InputError(f"--output {output}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@command("export")
def export_(
    results: Annotated[
        Path,
        typer.Argument(metavar="RESULTS.csv", help="A results CSV.", show_default=False),
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="github-action-benchmark (customSmallerIsBetter JSON, ms) or bencher "
            "(Bencher Metric Format, latency in ns).",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output.")
    ] = False,
) -> None:
    """Write a run's rows for a benchmark tracker, one series per (suite, case, strategy,
    pass, dtype): the median (the fastest round's, with rounds) and its 95% interval.

    Rows that are not ok are left out and counted on stderr.
    Exit codes: 0 written, 2 bad input (nothing written).
    """
    check_format(format, export_out.FORMATS)
    s = series_of_frame(read_results(results))
    text = export_out.export(s, format)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _write(text, output, overwrite)
    screen = Screen.for_streams()
    left = export_out.left_out_line(s)
    if left:
        screen.note(left)
    where = "stdout" if output is None else str(output)
    screen.note(f"exported {plural(len(s.points), 'series', 'series')} ({format}) → {where}")
