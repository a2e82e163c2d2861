"""The results CSV (DESIGN §6): the one column list, an incremental writer, a validating reader.

Every other module (the runner that fills rows, the table, ``compare``, ``merge``, ``report``)
takes the columns from here, so there is exactly one schema.

Text conventions: tuples are written with ``x`` (``4x4``), floats with ``repr`` (the shortest
string that reads back to the same double), ``None`` and NaN as an empty field, booleans as
``true``/``false``, ``samples_ms`` as ``;``-joined floats. A text field that a spreadsheet would
run as a formula (starting with ``= + - @``, a tab or a carriage return) is prefixed with
``'``; so is one that already starts with ``'``, which makes the reader's undoing exact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import pandas as pd

from .errors import InputError

SCHEMA_VERSION = 1

DESIGN_COLUMNS: tuple[str, ...] = (
    "schema_version", "run_id", "timestamp", "host", "tool_version", "suite", "case",
    "implementation", "backend", "algorithm", "device", "pass", "dtype", "batch",
    "in_channels", "out_channels", "groups", "input", "kernel", "stride", "padding",
    "output_padding", "dilation", "bias", "output", "status", "message", "samples",
    "median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "ci_low_ms",
    "ci_high_ms", "flops", "gflops", "peak_fraction", "max_abs_err", "max_rel_err",
    "peak_mem_mb", "threads", "samples_ms",
)  # fmt: skip
"""The columns of DESIGN §6, in its order (the contract)."""

EXTRA_COLUMNS: tuple[str, ...] = (
    "ci_rel_halfwidth",  # half-width of the median's 95% CI over the median (fraction)
    "inner_loops",  # calls per sample (the calibrated repetition count)
    "stop_reason",  # precision | budget | max-samples: why sampling stopped
    "clock",  # perf_counter | cuda-event: what timed the samples
    "seed",  # the seed the inputs were drawn from
    "rounds",  # how many times the row was measured, spread over the run (run --rounds)
    "round_samples",  # samples per round, ;-joined: how samples_ms splits into rounds
)
"""Columns this version adds after the contract's (allowed: 'extend freely')."""

COLUMNS: tuple[str, ...] = DESIGN_COLUMNS + EXTRA_COLUMNS

STATUSES: tuple[str, ...] = (
    "ok", "mismatch", "unsupported", "unavailable", "error", "timeout", "crashed", "oom",
    "skipped",
)  # fmt: skip

KEY_COLUMNS: tuple[str, ...] = ("suite", "case", "implementation", "pass", "dtype")
"""The identity of a row: at most one row per key in a results file."""

INT_COLUMNS = frozenset(
    {"schema_version", "batch", "in_channels", "out_channels", "groups", "samples", "flops",
     "threads", "inner_loops", "seed", "rounds"}
)  # fmt: skip
FLOAT_COLUMNS = frozenset(
    {"median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "ci_low_ms",
     "ci_high_ms", "gflops", "peak_fraction", "max_abs_err", "max_rel_err", "peak_mem_mb",
     "ci_rel_halfwidth"}
)  # fmt: skip
BOOL_COLUMNS = frozenset({"bias"})

Row = dict[str, object]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def row_key(row: Mapping[str, object]) -> tuple[str, ...]:
    """(suite, case, implementation, pass, dtype) as strings."""
    return tuple(str(row[c]) for c in KEY_COLUMNS)


def neutralise(text: str) -> str:
    """Keep spreadsheets from running a field as a formula (undone by :func:`restore`)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def restore(text: str) -> str:
    return text[1:] if text.startswith("'") else text


def format_float(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def format_value(value: object) -> str:
    """One field's text, by the conventions in this module's docstring."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, tuple | list):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "x".join(str(v) for v in value)
        return ";".join(format_float(float(v)) for v in value)  # type: ignore[arg-type]
    return neutralise(str(value))


def parse_samples(text: object) -> list[float]:
    """``samples_ms`` back to floats (empty field: no samples)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
        return []
    return [float(v) for v in str(text).split(";")]


def _encode(row: Mapping[str, object]) -> str:
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
        self._done: set[tuple[str, ...]] = set()
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
            tuple(str(v) for v in r) for r in frame[list(KEY_COLUMNS)].itertuples(index=False)
        }

    def done_keys(self) -> set[tuple[str, ...]]:
        """Identities of rows already in the file (empty unless resuming)."""
        return set(self._done)

    def write(self, row: Row) -> None:
        line = _encode(row)  # fails before anything is written
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


def _number(text: str, integer: bool) -> int | float | None:
    """One numeric field. Python's own parsers: pandas' fast float parser may round the
    last digit, and the file promises full precision."""
    if text == "":
        return None
    return int(text) if integer else float(text)


def _numeric_column(values: pd.Series, column: str, path: Path) -> pd.Series:
    integer = column in INT_COLUMNS
    parsed: list[int | float | None] = []
    for line, text in enumerate(values, start=2):
        try:
            parsed.append(_number(text, integer))
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise InputError(
                f"{path}: line {line}: column {column} is not {kind}: {text!r}"
            ) from None
    if integer:
        return pd.Series(parsed, index=values.index, dtype="Int64")
    return pd.Series(
        [math.nan if v is None else v for v in parsed], index=values.index, dtype="float64"
    )


def _convert(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    for column in frame.columns:
        values = frame[column]
        if column in INT_COLUMNS or column in FLOAT_COLUMNS:
            frame[column] = _numeric_column(values, column, path)
        elif column in BOOL_COLUMNS:
            bad = values[~values.isin(["true", "false"])]
            if len(bad):
                line = int(bad.index[0]) + 2
                raise InputError(
                    f"{path}: line {line}: column {column} must be true or false, "
                    f"got {bad.iloc[0]!r}"
                )
            frame[column] = values == "true"
        else:
            frame[column] = values.map(restore)
    return frame


def read_results(path: Path) -> pd.DataFrame:
    """Read and validate a results CSV; every problem is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data.endswith(b"\n") and b"\n" in data:
        # The writer ends every row with a newline, so a last line without one is a row torn
        # by a crash (kill -9, power cut): parsed, it would be a bogus row or break the file.
        data = data[: data.rfind(b"\n") + 1]
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable results CSV ({exc})") from None
    columns = tuple(frame.columns)
    if "schema_version" not in columns:
        raise InputError(f"{path}: not a deconvbench results file (no schema_version column)")
    versions = set(frame["schema_version"])
    if versions - {str(SCHEMA_VERSION)}:
        found = ", ".join(sorted(versions - {str(SCHEMA_VERSION)}))
        raise InputError(
            f"{path}: schema_version {found} is not supported (this version reads {SCHEMA_VERSION})"
        )
    missing = [c for c in DESIGN_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path}: missing columns: {', '.join(missing)}")
    if columns[: len(DESIGN_COLUMNS)] != DESIGN_COLUMNS:
        raise InputError(f"{path}: columns are not in the schema's order")
    bad_status = frame.loc[~frame["status"].isin(STATUSES), "status"]
    if len(bad_status):
        line = int(bad_status.index[0]) + 2
        raise InputError(f"{path}: line {line}: unknown status {bad_status.iloc[0]!r}")
    return _convert(frame, path)


def sidecar_path(path: Path) -> Path:
    """``results.csv`` → ``results.csv.json`` (a path already ending in .json is kept)."""
    path = Path(path)
    return path if path.suffix == ".json" else path.with_name(path.name + ".json")


def _jsonable(value: object) -> object:
    """Plain JSON types: tuple keys joined with '/', paths and unknown objects as text."""
    if isinstance(value, Mapping):
        return {
            "/".join(map(str, k)) if isinstance(k, tuple) else str(k): _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        unordered = isinstance(value, set | frozenset)
        items: Iterable[object] = sorted(value, key=str) if unordered else value
        return [_jsonable(v) for v in items]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_sidecar(path: Path, facts: Mapping[str, object]) -> Path:
    """Write the run's facts as JSON beside the CSV, atomically (temporary file + rename).

    ``path`` is the results CSV (the sidecar is ``<path>.json``) or the sidecar itself.
    Returns the sidecar's path.
    """
    target = sidecar_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": SCHEMA_VERSION, **dict(facts)}
    text = json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n"
    atomic_write(target, lambda f: f.write(text))
    return target


def atomic_write(target: Path, write: Callable[[IO[str]], object]) -> None:
    """Write a file through a temporary file and a rename: readers see the old or the new
    file whole, never a part. The file gets the permissions a plain ``open`` would give
    (``mkstemp``'s are owner-only). OSError from creating the temporary file propagates."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def read_sidecar(path: Path) -> dict[str, object]:
    """The facts of a results file (``path`` is the CSV or its sidecar)."""
    target = sidecar_path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{target}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{target}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{target}: expected a JSON object")
    return data
