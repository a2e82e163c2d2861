"""The JSON sidecar of a results file (the run's facts), and atomic file writes."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from ..errors import InputError
from .schema import SCHEMA_VERSION


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
