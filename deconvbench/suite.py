"""Suite files (TOML, DESIGN §5) and ``--case`` strings, turned into :class:`Case` lists.

Suites are data: values are type-checked, never evaluated. A sweep's ``name`` is a format
template, but only plain ``{key}`` fields naming case keys are accepted, so no attribute or
index lookup can run. Every error is an :class:`InputError` with ONE line naming the file (or
the ``--case`` string), the entry and the key, because the CLI prints it as is and exits 2.

The full format is documented in ``docs/suite-format.md``.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TypeGuard

from .case import Case
from .errors import InputError, ProblemError
from .problem import DTYPES, PASSES, Pass, Problem, format_tuple

SUITES_DIR = Path(__file__).with_name("suites")  # package data; top-level `suites` links here
CLI_SUITE = "cli"  # the suite of cases given with --case

PROBLEM_KEYS = tuple(f.name for f in fields(Problem))  # batch, in_channels, ..., dtype
KEYS = ("name", *PROBLEM_KEYS, "passes")
REQUIRED = ("in_channels", "out_channels", "input", "kernel")
DEFAULTS: dict[str, object] = dict(batch=1, stride=1, padding=0, output_padding=0, dilation=1)
DEFAULTS |= dict(groups=1, bias=False, dtype="float32", passes=PASSES)
"""Values of keys a case leaves out (the same for suite files and ``--case``)."""

MAX_SWEEP_CASES = 10_000  # guards against a typo that would expand a sweep into millions


@dataclass(frozen=True)
class Suite:
    """A loaded suite file: its cases in file order ([[case]] tables, then each sweep's)."""

    name: str
    description: str
    path: Path
    cases: tuple[Case, ...]


class _Bad(Exception):
    """One bad value or entry; the caller prefixes where it is (file, entry)."""


def _error(where: str, message: str) -> InputError:
    return InputError(f"{where}: {message}".replace("\n", " "))


def _show(value: object) -> str:
    """A value as it would be written in TOML, shortened: errors quote what the user wrote."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_KINDS = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
_KINDS |= {list: "a list", dict: "a table"}


def _got(value: object) -> str:
    kind = _KINDS.get(type(value), "a date/time")  # tomllib returns exactly these types
    return f"got {_show(value)} ({kind})"


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- values of suite files ---------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def _int(key: str, value: object) -> int:
    if not _is_int(value):
        raise _Bad(f"{key}: expected an integer, {_got(value)}")
    return value


def _input(key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 3 or not all(map(_is_int, value)):
        raise _Bad(
            f"{key}: expected a list of 1 to 3 spatial sizes such as [32, 32] "
            f"(its length sets 1-D/2-D/3-D), {_got(value)}"
        )
    return tuple(value)


def _per_dim(key: str, value: object) -> int | tuple[int, ...]:
    if _is_int(value):
        return value
    if isinstance(value, list) and value and all(map(_is_int, value)):
        return tuple(value)
    raise _Bad(
        f"{key}: expected an integer or a list of integers (one per spatial dimension), "
        f"{_got(value)}"
    )


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{key}: expected true or false, {_got(value)}")
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"{key}: expected a non-empty string, {_got(value)}")
    return value


def _passes(key: str, value: object) -> tuple[Pass, ...]:
    if not isinstance(value, list) or not value:
        raise _Bad(f'{key}: expected a list such as ["forward", "backward"], {_got(value)}')
    for item in value:
        if item not in PASSES:
            raise _Bad(f"{key}: unknown pass {_show(item)}; passes are forward and backward")
    if len(set(value)) != len(value):
        raise _Bad(f"{key}: lists a pass twice, {_got(value)}")
    return tuple(p for p in PASSES if p in value)


_CHECKERS: dict[str, Callable[[str, object], object]] = {"name": _text, "dtype": _text}
_CHECKERS |= dict.fromkeys(("batch", "in_channels", "out_channels", "groups"), _int)
_CHECKERS |= dict.fromkeys(("kernel", "stride", "padding", "output_padding", "dilation"), _per_dim)
_CHECKERS |= {"input": _input, "bias": _bool, "passes": _passes}


def _check_keys(table: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise _Bad(f"unknown key {key!r}{_suggest(key, allowed)}")


def _build(values: Mapping[str, object]) -> tuple[Problem, tuple[Pass, ...]]:
    """The problem and passes of checked values, filling in DEFAULTS."""
    merged = {**DEFAULTS, **values}
    missing = [k for k in REQUIRED if k not in merged]
    if missing:
        noun = "keys" if len(missing) > 1 else "key"
        raise _Bad(f"missing required {noun} {', '.join(map(repr, missing))}")
    try:
        problem = Problem.create(**{k: merged[k] for k in PROBLEM_KEYS})  # type: ignore[arg-type]
    except ProblemError as e:  # its message starts with the key: "output_padding: must ..."
        raise _Bad(str(e)) from None
    return problem, merged["passes"]  # type: ignore[return-value]  # checked by _passes


# --- entries of suite files --------------------------------------------------------------


def _defaults(table: object) -> dict[str, object]:
    if not isinstance(table, dict):
        raise _Bad(f"must be a table, {_got(table)}")
    _check_keys(table, KEYS)
    if "name" in table:
        raise _Bad("name: cannot be a default (every case and sweep names itself)")
    return {k: _CHECKERS[k](k, v) for k, v in table.items()}


def _case(table: dict[str, object], defaults: Mapping[str, object]) -> list[Case]:
    _check_keys(table, KEYS)
    values = {k: _CHECKERS[k](k, v) for k, v in table.items()}
    if "name" not in values:
        raise _Bad("missing required key 'name'")
    problem, passes = _build({**defaults, **values})
    return [Case("", str(values["name"]), problem, passes)]


def _template_fields(template: str) -> list[str]:
    """The ``{key}`` fields of a sweep's name template, refusing anything but plain keys."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise _Bad(f"name: bad template {template!r}: {e}") from None
    names: list[str] = []
    for _literal, field, spec, _conversion in parsed:
        if field is None:
            continue
        if field not in KEYS[1:]:  # any key but name
            what = "an empty field {}" if not field else f"unknown field {{{field}}}"
            raise _Bad(
                f"name: {what} in template {template!r}{_suggest(field, KEYS[1:])}; "
                f"fields are case keys such as {{kernel}}"
            )
        if spec and "{" in spec:
            raise _Bad(f"name: nested fields are not allowed in template {template!r}")
        if any(len(digits) > 2 for digits in re.findall(r"\d+", spec or "")):
            # {batch:999999999} would build a gigabyte name per case: data must stay cheap
            raise _Bad(
                f"name: format spec {spec!r} in template {template!r} is too wide "
                "(widths of at most 2 digits, such as {batch:03d})"
            )
        names.append(field)
    return names


def _render(value: object) -> object:
    """A value as it appears in a generated name: tuples as ``4x4``, passes as a+b."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return "+".join(value)
    if isinstance(value, tuple):
        return format_tuple(value)
    return value


def _sweep(table: dict[str, object], defaults: Mapping[str, object]) -> list[Case]:
    _check_keys(table, KEYS)
    if "name" not in table:
        raise _Bad("missing required key 'name' (a template such as \"k{kernel}-s{stride}\")")
    template = _text("name", table["name"])
    fields = _template_fields(template)
    fixed: dict[str, object] = {}
    axes: dict[str, list[object]] = {}
    for key, raw in table.items():
        if key == "name":
            continue
        if key == "passes":  # a list already: the passes of every generated case, not an axis
            fixed[key] = _passes(key, raw)
            continue
        if not isinstance(raw, list):
            raise _Bad(f"sweep key {key!r} must be a list (write {key} = [{_show(raw)}])")
        if not raw:
            raise _Bad(f"sweep key {key!r} is an empty list")
        if key == "input" and not all(isinstance(v, list) for v in raw):
            raise _Bad(
                "sweep key 'input' must be a list of per-dimension lists such as "
                f"[[16, 16], [32, 32]], {_got(raw)}"
            )
        axes[key] = [_CHECKERS[key](f"{key}[{i}]", v) for i, v in enumerate(raw)]
    count = math.prod(len(v) for v in axes.values())
    if count > MAX_SWEEP_CASES:
        raise _Bad(f"expands to {count} cases, more than the limit of {MAX_SWEEP_CASES}")
    silent = [k for k, v in axes.items() if len(v) > 1 and k not in fields]
    cases: list[Case] = []
    for combo in itertools.product(*axes.values()):
        values = {**defaults, **fixed, **dict(zip(axes, combo, strict=True))}
        shown = {k: _render(v) for k, v in {**DEFAULTS, **values}.items()}
        try:
            name = template.format_map(shown)
        except (ValueError, TypeError) as e:
            raise _Bad(f"name: cannot render template {template!r}: {e}") from None
        try:
            problem, passes = _build(values)
        except _Bad as e:
            raise _Bad(f"generated case {name!r}: {e}") from None
        if any(c.name == name for c in cases):
            hint = f": add {{{silent[0]}}} to the template" if silent else ""
            raise _Bad(f"generates the case name {name!r} twice{hint}")
        cases.append(Case("", name, problem, passes))
    return cases


def _tables(doc: dict[str, object], key: str) -> list[dict[str, object]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise _Bad(f"{key!r} must be an array of tables: write [[{key}]], not {_show(value)}")
    return value


def _label(kind: str, index: int, table: Mapping[str, object]) -> str:
    name = table.get("name")
    return f"{kind} #{index}" + (f" {name!r}" if isinstance(name, str) else "")


def _parse_document(doc: dict[str, object], path: Path) -> Suite:
    where = str(path)
    try:
        _check_keys(doc, ("name", "description", "defaults", "case", "sweep"))
        missing = [k for k in ("name", "description") if k not in doc]
        if missing:
            raise _Bad(f"missing top-level key {missing[0]!r}")
        name, description = (_text(k, doc[k]) for k in ("name", "description"))
        cases_t, sweeps_t = _tables(doc, "case"), _tables(doc, "sweep")
    except _Bad as e:
        raise _error(where, str(e)) from None
    if not cases_t and not sweeps_t:
        raise _error(where, "the suite has no cases: add a [[case]] or [[sweep]] table")
    try:
        defaults = _defaults(doc.get("defaults", {}))
    except _Bad as e:
        raise _error(where, f"[defaults]: {e}") from None
    cases: list[Case] = []
    owner: dict[str, str] = {}  # case name -> the entry that made it
    entries = [(_label("case", i, t), _case, t) for i, t in enumerate(cases_t, 1)]
    entries += [(_label("sweep", i, t), _sweep, t) for i, t in enumerate(sweeps_t, 1)]
    for label, parse, table in entries:
        try:
            made = parse(table, defaults)
        except _Bad as e:
            raise _error(where, f"{label}: {e}") from None
        for case in made:
            if case.name in owner:
                raise _error(
                    where, f"{label}: duplicate case name {case.name!r} (also {owner[case.name]})"
                )
            owner[case.name] = label
            cases.append(replace(case, suite=name))
    return Suite(name, description, path, tuple(cases))


def _load_file(path: Path) -> Suite:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read suite file {str(path)!r}: {e.strerror or e}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _error(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line 3, column 5)"
        raise _error(str(path), f"invalid TOML: {e}") from None
    return _parse_document(doc, path)


# --- shipped suites and lookup -----------------------------------------------------------


def suite_names() -> list[str]:
    """Names of the shipped suites (each file's name is its suite's name, checked by tests)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def shipped_suites() -> list[Suite]:
    """Every shipped suite, loaded, sorted by name."""
    return [_load_file(SUITES_DIR / f"{name}.toml") for name in suite_names()]


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite file by path (anything with a / or ending .toml)."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or os.sep in name_or_path:
        return _load_file(Path(name_or_path))
    names = suite_names()
    if name_or_path in names:
        return _load_file(SUITES_DIR / f"{name_or_path}.toml")
    if name_or_path and Path(name_or_path).is_file():  # a suite file in the working directory
        return _load_file(Path(name_or_path))
    raise InputError(
        f"unknown suite {name_or_path!r}{_suggest(name_or_path, names)}; shipped suites: "
        f"{', '.join(names)} (or give the path of a .toml file)"
    )


# --- --case strings ------------------------------------------------------------------------

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
        most = 1 if _CHECKERS[key] is _int else 3
        if not all(_NUMBER.fullmatch(p) for p in parts) or len(parts) > most:
            want = "an integer" if most == 1 else "1 to 3 integers joined by x (4x4)"
            raise _Bad(f"{key}: expected {want}, got {text!r}")
        numbers = [int(p) for p in parts]
        value = numbers if key == "input" or len(numbers) > 1 else numbers[0]
    return _CHECKERS[key](key, value)


def _default_name(problem: Problem) -> str:
    """The problem as a ``--case`` string without defaults or dtype: stable across runs, and
    unchanged by a ``--dtype`` override (the dtype has its own column in results)."""
    parts = []
    for key in PROBLEM_KEYS:
        value = getattr(problem, key)
        if isinstance(value, tuple) and key != "input" and len(set(value)) == 1:
            value = value[0]  # kernel=4 rather than kernel=4x4
        if key in REQUIRED or (key != "dtype" and value != DEFAULTS[key]):
            parts.append(f"{key}={_render(value)}")
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
                raise _Bad(f"{pair.strip()!r} is not a key=value pair")
            if key not in KEYS:
                raise _Bad(f"unknown key {key!r}{_suggest(key, KEYS)}")
            if key in values:
                raise _Bad(f"{key}: given twice")
            if not text:
                raise _Bad(f"{key}: missing value")
            values[key] = _parse_value(key, text)
        problem, passes = _build(values)
    except _Bad as e:
        raise _error(label, str(e)) from None
    name = str(values.get("name") or _default_name(problem))
    return Case(CLI_SUITE, name, problem, passes)


def cases_for(suites: list[str], case_specs: list[str], dtype: str | None = None) -> list[Case]:
    """All cases of the named suites, then the ``--case`` cases; ``dtype`` overrides each dtype.

    A suite named twice is loaded once. Two cases with one identity (suite, name, dtype) are an
    error: results rows are keyed on it, so one would overwrite the other on resume."""
    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"--dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cases: list[tuple[str, Case]] = []
    loaded: dict[str, Path] = {}
    for ref in suites:
        suite = load_suite(ref)
        if suite.name in loaded:
            if loaded[suite.name].resolve() == suite.path.resolve():
                continue
            raise InputError(
                f"--suite {ref!r}: its name {suite.name!r} is also the name of the suite in "
                f"{str(loaded[suite.name])!r} (results are keyed by suite name)"
            )
        loaded[suite.name] = suite.path
        cases += [(f"suite {suite.name!r} case {c.name!r}", c) for c in suite.cases]
    cases += [(f"--case #{i + 1}", parse_case(s, i)) for i, s in enumerate(case_specs)]
    if dtype is not None:
        cases = [(label, replace(c, problem=replace(c.problem, dtype=dtype))) for label, c in cases]
    seen: dict[tuple[str, str, str], str] = {}
    for label, case in cases:
        key = (case.suite, case.name, case.problem.dtype)
        if key in seen:
            raise InputError(f"{label}: the same case as {seen[key]} ({case.name!r})")
        seen[key] = label
    return [case for _, case in cases]
