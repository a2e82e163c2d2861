"""The incremental writer of a results CSV: every row on disk (flushed, fsynced) as it finishes."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

from ..errors import InputError
from .fields import format_value
from .reader import read_results
from .schema import COLUMNS, KEY_COLUMNS, STATUSES, RowKey, row_key


def encode(row: Mapping[str, object]) -> str:
    """One row as a CSV line (its columns checked against the schema first)."""
    missing = [c for c in COLUMNS if c not in row]
    unknown = [c for c in row if c not in COLUMNS]
    if missing or unknown:
        raise ValueError(f"row has missing columns {missing} and unknown columns {unknown}")
    status = row["status"]
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(format_value(row[c]) for c in COLUMNS)
    return buffer.getvalue()


def _header_line() -> str:
    return ",".join(COLUMNS) + "\n"


class ResultWriter:
    """Appends rows to a results CSV, each flushed and fsynced as it is written.

    ``mode``: ``"new"`` refuses an existing file, ``"overwrite"`` replaces it, ``"resume"``
    appends to it after checking its header (a torn last line, left by a crash, is cut off),
    and :meth:`done_keys` says which rows need not run again.
    """

    def __init__(self, path: Path, mode: Literal["new", "overwrite", "resume"]) -> None:
        self.path = Path(path)
        self._done: set[RowKey] = set()
        if mode not in ("new", "overwrite", "resume"):
            raise ValueError(f"mode must be new, overwrite or resume, got {mode!r}")
        if self.path.is_dir():
            raise InputError(f"{self.path} is a directory, not a results file")
        exists = self.path.exists()
        if mode == "new" and exists:
            raise InputError(f"{self.path} exists; use --overwrite or --resume")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if mode == "resume" and exists and self.path.stat().st_size > 0:
            self._prepare_resume()
            self._file = self.path.open("a", encoding="utf-8", newline="")
        else:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._file.write(_header_line())
            self._sync()

    def _prepare_resume(self) -> None:
        # Everything is checked before the file is touched: a file that is not ours (or of
        # another version) must come out of a refused --resume exactly as it went in.
        frame = read_results(self.path)  # ignores a torn last row
        if tuple(frame.columns) != COLUMNS:
            raise InputError(
                f"{self.path}: cannot resume, its columns differ from this version's "
                "(written by another deconvbench version?); start a new file"
            )
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # a row torn by a crash: drop it, it will run again
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                raise InputError(f"{self.path}: cannot resume, the header line is incomplete")
            with self.path.open("r+b") as f:
                f.truncate(cut)
        self._done = {
            RowKey(*(str(v) for v in r)) for r in frame[list(KEY_COLUMNS)].itertuples(index=False)
        }

    def done_keys(self) -> set[RowKey]:
        """Identities of rows already in the file (empty unless resuming)."""
        return set(self._done)

    def write(self, row: Mapping[str, object]) -> None:
        line = encode(row)  # fails before anything is written
        self._file.write(line)  # one write of the whole line: an interrupt cannot split it
        self._sync()
        self._done.add(row_key(row))

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._sync()
            self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


