"""The values of suite files and ``--case`` strings: their keys, defaults and checks.

Both front ends (``suite_file`` and ``case_spec``) read a case's keys through the same
checkers, so a value means the same and fails with the same words wherever it is written.
A bad value raises :class:`Bad` with the key and what was wrong; the caller prefixes where it
is (file and entry, or the ``--case`` string) and raises one :class:`InputError` line.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TypeGuard

from ..errors import InputError, ProblemError
from ..problem import PASSES, Pass, Problem, format_tuple

PROBLEM_KEYS = tuple(f.name for f in fields(Problem))  # batch, in_channels, ..., dtype
KEYS = ("name", *PROBLEM_KEYS, "passes")
MODEL_KEYS = ("count", "layers")
"""Keys of a ``[[case]]`` only: how many of a model's layers (or a log's executions) have the
case's problem, and their names (``deconvbench import`` writes them)."""
REQUIRED = ("in_channels", "out_channels", "input", "kernel")
DEFAULTS: dict[str, object] = dict(batch=1, stride=1, padding=0, output_padding=0, dilation=1)
DEFAULTS |= dict(groups=1, bias=False, dtype="float32", passes=PASSES)
"""Values of keys a case leaves out (the same for suite files and ``--case``)."""


class Bad(Exception):
    """One bad value or entry; the caller prefixes where it is (file, entry)."""


def error(where: str, message: str) -> InputError:
    return InputError(f"{where}: {message}".replace("\n", " "))


def show(value: object) -> str:
    """A value as it would be written in TOML, shortened: errors quote what the user wrote."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_KINDS = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
_KINDS |= {list: "a list", dict: "a table"}


def got(value: object) -> str:
    kind = _KINDS.get(type(value), "a date/time")  # tomllib returns exactly these types
    return f"got {show(value)} ({kind})"


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def int_value(key: str, value: object) -> int:
    if not is_int(value):
        raise Bad(f"{key}: expected an integer, {got(value)}")
    return value


def _input(key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 3 or not all(map(is_int, value)):
        raise Bad(
            f"{key}: expected a list of 1 to 3 spatial sizes such as [32, 32] "
            f"(its length sets 1-D/2-D/3-D), {got(value)}"
        )
    return tuple(value)


def _per_dim(key: str, value: object) -> int | tuple[int, ...]:
    if is_int(value):
        return value
    if isinstance(value, list) and value and all(map(is_int, value)):
        return tuple(value)
    raise Bad(
        f"{key}: expected an integer or a list of integers (one per spatial dimension), "
        f"{got(value)}"
    )


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"{key}: expected true or false, {got(value)}")
    return value


def text_value(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"{key}: expected a non-empty string, {got(value)}")
    return value


def passes_value(key: str, value: object) -> tuple[Pass, ...]:
    if not isinstance(value, list) or not value:
        raise Bad(f'{key}: expected a list such as ["forward", "backward"], {got(value)}')
    for item in value:
        if item not in PASSES:
            raise Bad(f"{key}: unknown pass {show(item)}; passes are forward and backward")
    if len(set(value)) != len(value):
        raise Bad(f"{key}: lists a pass twice, {got(value)}")
    return tuple(p for p in PASSES if p in value)


def count_value(key: str, value: object) -> int:
    number = int_value(key, value)
    if number < 1:
        raise Bad(f"{key}: must be at least 1, got {number}")
    return number


def layers_value(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Bad(f'{key}: expected a list of layer names such as ["up1", "up2"], {got(value)}')
    return tuple(value)


CHECKERS: dict[str, Callable[[str, object], object]] = {"name": text_value, "dtype": text_value}
CHECKERS |= dict.fromkeys(("batch", "in_channels", "out_channels", "groups"), int_value)
CHECKERS |= dict.fromkeys(("kernel", "stride", "padding", "output_padding", "dilation"), _per_dim)
CHECKERS |= {"input": _input, "bias": _bool, "passes": passes_value}
CHECKERS |= {"count": count_value, "layers": layers_value}


def check_keys(table: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise Bad(f"unknown key {key!r}{suggest(key, allowed)}")


def build(values: Mapping[str, object]) -> tuple[Problem, tuple[Pass, ...]]:
    """The problem and passes of checked values, filling in DEFAULTS."""
    merged = {**DEFAULTS, **values}
    missing = [k for k in REQUIRED if k not in merged]
    if missing:
        noun = "keys" if len(missing) > 1 else "key"
        raise Bad(f"missing required {noun} {', '.join(map(repr, missing))}")
    try:
        problem = Problem.create(**{k: merged[k] for k in PROBLEM_KEYS})  # type: ignore[arg-type]
    except ProblemError as e:  # its message starts with the key: "output_padding: must ..."
        raise Bad(str(e)) from None
    return problem, merged["passes"]  # type: ignore[return-value]  # checked by passes_value


def render(value: object) -> object:
    """A value as it appears in a generated name: tuples as ``4x4``, passes as a+b."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return "+".join(value)
    if isinstance(value, tuple):
        return format_tuple(value)
    return value


