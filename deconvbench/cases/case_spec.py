"""``--case`` strings: one problem as ``key=value`` pairs joined by commas.

Keys and values are those of suite files (``values``), tuples written with ``x`` (``4x4``).
A case without ``name=`` is named by its parameters, so the same problem gets the same name
in every run (results are matched by name).
"""

from __future__ import annotations

import re

from ..problem import PASSES, Problem
from .case import CLI_SUITE, Case
from .values import (
    CHECKERS,
    DEFAULTS,
    KEYS,
    PROBLEM_KEYS,
    REQUIRED,
    Bad,
    build,
    error,
    int_value,
    render,
    suggest,
)

_NUMBER = re.compile(r"[+-]?\d+")


def _parse_value(key: str, text: str) -> object:
    """One ``--case`` value, read as its TOML counterpart and checked by the same rules."""
    value: object = text  # name, dtype (the Problem checks dtype)
    if key == "bias":
        value = {"true": True, "false": False}.get(text.lower(), text)
    elif key == "passes":
        value = list(PASSES) if text == "all" else [p.strip() for p in text.split("+")]
    elif key != "name" and key != "dtype":  # numbers, tuples written with x: 4x4
        parts = [p.strip() for p in text.split("x")]
        most = 1 if CHECKERS[key] is int_value else 3
        if not all(_NUMBER.fullmatch(p) for p in parts) or len(parts) > most:
            want = "an integer" if most == 1 else "1 to 3 integers joined by x (4x4)"
            raise Bad(f"{key}: expected {want}, got {text!r}")
        numbers = [int(p) for p in parts]
        value = numbers if key == "input" or len(numbers) > 1 else numbers[0]
    return CHECKERS[key](key, value)


def _default_name(problem: Problem) -> str:
    """The problem as a ``--case`` string without defaults or dtype: stable across runs, and
    unchanged by a ``--dtype`` override (the dtype has its own column in results)."""
    parts = []
    for key in PROBLEM_KEYS:
        value = getattr(problem, key)
        if isinstance(value, tuple) and key != "input" and len(set(value)) == 1:
            value = value[0]  # kernel=4 rather than kernel=4x4
        if key in REQUIRED or (key != "dtype" and value != DEFAULTS[key]):
            parts.append(f"{key}={render(value)}")
    return ",".join(parts)


def parse_case(spec: str, index: int = 0) -> Case:
    """A ``--case`` string (``key=value`` pairs joined by commas) as a case of suite "cli".

    ``index`` is the string's position among the ``--case`` options, for error messages.
    Without ``name=``, the case is named by its parameters, so the same problem gets the
    same name in every run (results are matched by name).
    """
    label = f"--case #{index + 1} {spec!r}"
    values: dict[str, object] = {}
    try:
        for pair in spec.split(","):
            key, eq, text = (s.strip() for s in pair.partition("="))
            if not eq or not key:
                raise Bad(f"{pair.strip()!r} is not a key=value pair")
            if key not in KEYS:
                raise Bad(f"unknown key {key!r}{suggest(key, KEYS)}")
            if key in values:
                raise Bad(f"{key}: given twice")
            if not text:
                raise Bad(f"{key}: missing value")
            values[key] = _parse_value(key, text)
        problem, passes = build(values)
    except Bad as e:
        raise error(label, str(e)) from None
    name = str(values.get("name") or _default_name(problem))
    return Case(CLI_SUITE, name, problem, passes)


