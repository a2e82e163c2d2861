"""Join results files (shards of one run, or partial runs) into one.

Every input is read by the results reader (which validates schema version, columns, statuses
and values), and every row is written again by the writer's text conventions
(:func:`~.fields.format_value`). So a file that pandas rewrote (``True``, ``3.0``) joins one
the tool wrote and the output is in one format, the tool's own, reading back to the same
values; nothing is lost, as a float's ``repr`` reads back to the same double. The files must
share one header. A row identity (suite, case, implementation, pass, dtype) may appear once:
the same row twice is a *duplicate* (a shard merged twice, or once as pandas rewrote it), two
different rows with one identity a *conflict* (two runs measured the same thing); both are
refused, naming the files. Rows are compared in that one format, so only a difference in
value is a conflict.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from ..errors import InputError
from .fields import format_value
from .reader import read_results
from .schema import KEY_COLUMNS
from .sidecar import atomic_write, read_sidecar, sidecar_path, write_sidecar


@dataclass(frozen=True)
class Merged:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    sources: tuple[Path, ...]


def text_rows(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    """A frame from :func:`read_results` as the text rows the writer would write."""
    columns = [
        [format_value(None if v is pd.NA else v) for v in frame[c].tolist()] for c in frame
    ]
    return list(zip(*columns, strict=True)) if columns else []


def merge(paths: Sequence[Path]) -> Merged:
    """Validate and join; :class:`InputError` on any mismatch, duplicate or conflict."""
    if len(paths) < 2:
        raise InputError(f"merge: give at least two results files, got {len(paths)}")
    if len(set(map(Path.resolve, map(Path, paths)))) != len(paths):
        raise InputError("merge: the same file is named twice")
    header: tuple[str, ...] | None = None
    seen: dict[tuple[str, ...], tuple[tuple[str, ...], Path]] = {}
    rows: list[tuple[str, ...]] = []
    for path in map(Path, paths):
        frame = read_results(path)  # schema, columns, statuses and values, with precise errors
        this_header = tuple(str(c) for c in frame.columns)
        if header is None:
            header = this_header
        elif this_header != header:
            raise InputError(f"{path}: its columns differ from {paths[0]}'s: not one schema")
        key_at = [header.index(c) for c in KEY_COLUMNS]
        for line, row in zip(frame.index + 2, text_rows(frame), strict=True):
            key = tuple(row[i] for i in key_at)
            if key in seen:
                earlier, where = seen[key]
                what = "duplicated" if earlier == row else "conflicting"
                raise InputError(
                    f"{path}: line {line}: {what} row {'/'.join(key)} (also in {where})"
                )
            seen[key] = (row, path)
            rows.append(row)
    assert header is not None  # at least two paths were read
    return Merged(header, tuple(rows), tuple(map(Path, paths)))


def write(merged: Merged, output: Path, overwrite: bool = False) -> Path:
    """Write atomically (temporary file, then rename); an existing output needs ``overwrite``.

    The sidecar lists the sources and their own facts, so nothing about any shard is lost.
    """
    output = Path(output)
    if output.is_dir():
        raise InputError(f"--output {output}: is a directory, not a results file")
    if output.exists() and not overwrite:
        raise InputError(f"{output}: exists; use --overwrite to replace it")
    if output.resolve() in {p.resolve() for p in merged.sources}:
        raise InputError(f"{output}: is one of the inputs; write the merge elsewhere")

    def write(f: IO[str]) -> None:
        writer = csv.writer(f, lineterminator="\n")  # the line ends the writer uses
        writer.writerow(merged.header)
        writer.writerows(merged.rows)

    try:  # a path under a regular file, or a folder we may not write in: bad input
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, write)
    except OSError as e:
        raise InputError(f"--output {output}: {e.strerror or e}") from None
    sources = []
    for path in merged.sources:
        facts = read_sidecar(path) if sidecar_path(path).exists() else None
        sources.append({"path": str(path), "facts": facts})
    write_sidecar(output, {"merged_from": sources, "rows": len(merged.rows)})
    return output
