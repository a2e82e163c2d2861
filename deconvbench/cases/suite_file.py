"""Suite files (TOML) turned into :class:`Suite` objects: entries, sweeps, shipped suites.

Suites are data: values are type-checked, never evaluated. A sweep's ``name`` is a format
template, but only plain ``{key}`` fields naming case keys are accepted, so no attribute or
index lookup can run. Every error is an :class:`InputError` with ONE line naming the file,
the entry and the key, because the CLI prints it as is and exits 2.

The format is documented in ``docs/suite-format.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError
from .case import Case
from .measure_table import MeasureRequest, parse_measure
from .values import (
    CHECKERS,
    DEFAULTS,
    KEYS,
    MODEL_KEYS,
    Bad,
    build,
    check_keys,
    error,
    got,
    passes_value,
    render,
    show,
    suggest,
    text_value,
)

SUITES_DIR = Path(__file__).parents[1] / "suites"  # package data; top-level `suites` links here
MAX_SWEEP_CASES = 10_000  # guards against a typo that would expand a sweep into millions


@dataclass(frozen=True)
class Suite:
    """A loaded suite file: its cases in file order ([[case]] tables, then each sweep's)."""

    name: str
    description: str
    path: Path
    cases: tuple[Case, ...]
    measure: MeasureRequest = dataclasses.field(default_factory=MeasureRequest)
    """The timing settings the suite asks for (its ``[measure]`` table)."""


def _defaults(table: object) -> dict[str, object]:
    if not isinstance(table, dict):
        raise Bad(f"must be a table, {got(table)}")
    for key in MODEL_KEYS:
        if key in table:
            raise Bad(f"{key}: cannot be a default (it belongs to one [[case]])")
    check_keys(table, KEYS)
    if "name" in table:
        raise Bad("name: cannot be a default (every case and sweep names itself)")
    return {k: CHECKERS[k](k, v) for k, v in table.items()}


def _case(table: dict[str, object], defaults: Mapping[str, object]) -> list[Case]:
    check_keys(table, (*KEYS, *MODEL_KEYS))
    values = {k: CHECKERS[k](k, v) for k, v in table.items()}
    if "name" not in values:
        raise Bad("missing required key 'name'")
    count, layers = values.pop("count", None), values.pop("layers", ())
    problem, passes = build({**defaults, **values})
    return [Case("", str(values["name"]), problem, passes, count, layers)]  # type: ignore[arg-type]


def _template_fields(template: str) -> list[str]:
    """The ``{key}`` fields of a sweep's name template, refusing anything but plain keys."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise Bad(f"name: bad template {template!r}: {e}") from None
    names: list[str] = []
    for _literal, field, spec, _conversion in parsed:
        if field is None:
            continue
        if field not in KEYS[1:]:  # any key but name
            what = "an empty field {}" if not field else f"unknown field {{{field}}}"
            raise Bad(
                f"name: {what} in template {template!r}{suggest(field, KEYS[1:])}; "
                f"fields are case keys such as {{kernel}}"
            )
        if spec and "{" in spec:
            raise Bad(f"name: nested fields are not allowed in template {template!r}")
        if any(len(digits) > 2 for digits in re.findall(r"\d+", spec or "")):
            # {batch:999999999} would build a gigabyte name per case: data must stay cheap
            raise Bad(
                f"name: format spec {spec!r} in template {template!r} is too wide "
                "(widths of at most 2 digits, such as {batch:03d})"
            )
        names.append(field)
    return names


def _sweep(table: dict[str, object], defaults: Mapping[str, object]) -> list[Case]:
    for key in MODEL_KEYS:
        if key in table:
            raise Bad(f"{key}: not in a [[sweep]] (it belongs to one [[case]])")
    check_keys(table, KEYS)
    if "name" not in table:
        raise Bad("missing required key 'name' (a template such as \"k{kernel}-s{stride}\")")
    template = text_value("name", table["name"])
    fields = _template_fields(template)
    fixed: dict[str, object] = {}
    axes: dict[str, list[object]] = {}
    for key, raw in table.items():
        if key == "name":
            continue
        if key == "passes":  # a list already: the passes of every generated case, not an axis
            fixed[key] = passes_value(key, raw)
            continue
        if not isinstance(raw, list):
            raise Bad(f"sweep key {key!r} must be a list (write {key} = [{show(raw)}])")
        if not raw:
            raise Bad(f"sweep key {key!r} is an empty list")
        if key == "input" and not all(isinstance(v, list) for v in raw):
            raise Bad(
                "sweep key 'input' must be a list of per-dimension lists such as "
                f"[[16, 16], [32, 32]], {got(raw)}"
            )
        axes[key] = [CHECKERS[key](f"{key}[{i}]", v) for i, v in enumerate(raw)]
    count = math.prod(len(v) for v in axes.values())
    if count > MAX_SWEEP_CASES:
        raise Bad(f"expands to {count} cases, more than the limit of {MAX_SWEEP_CASES}")
    silent = [k for k, v in axes.items() if len(v) > 1 and k not in fields]
    cases: list[Case] = []
    for combo in itertools.product(*axes.values()):
        values = {**defaults, **fixed, **dict(zip(axes, combo, strict=True))}
        shown = {k: render(v) for k, v in {**DEFAULTS, **values}.items()}
        try:
            name = template.format_map(shown)
        except (ValueError, TypeError) as e:
            raise Bad(f"name: cannot render template {template!r}: {e}") from None
        try:
            problem, passes = build(values)
        except Bad as e:
            raise Bad(f"generated case {name!r}: {e}") from None
        if any(c.name == name for c in cases):
            hint = f": add {{{silent[0]}}} to the template" if silent else ""
            raise Bad(f"generates the case name {name!r} twice{hint}")
        cases.append(Case("", name, problem, passes))
    return cases


def _tables(doc: dict[str, object], key: str) -> list[dict[str, object]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise Bad(f"{key!r} must be an array of tables: write [[{key}]], not {show(value)}")
    return value


def _label(kind: str, index: int, table: Mapping[str, object]) -> str:
    name = table.get("name")
    return f"{kind} #{index}" + (f" {name!r}" if isinstance(name, str) else "")


def _parse_document(doc: dict[str, object], path: Path) -> Suite:
    where = str(path)
    try:
        check_keys(doc, ("name", "description", "defaults", "measure", "case", "sweep"))
        missing = [k for k in ("name", "description") if k not in doc]
        if missing:
            raise Bad(f"missing top-level key {missing[0]!r}")
        name, description = (text_value(k, doc[k]) for k in ("name", "description"))
        cases_t, sweeps_t = _tables(doc, "case"), _tables(doc, "sweep")
    except Bad as e:
        raise error(where, str(e)) from None
    if not cases_t and not sweeps_t:
        raise error(where, "the suite has no cases: add a [[case]] or [[sweep]] table")
    try:
        defaults = _defaults(doc.get("defaults", {}))
    except Bad as e:
        raise error(where, f"[defaults]: {e}") from None
    try:
        measure = parse_measure(doc.get("measure", {}))
    except Bad as e:
        raise error(where, f"[measure]: {e}") from None
    cases: list[Case] = []
    owner: dict[str, str] = {}  # case name -> the entry that made it
    entries = [(_label("case", i, t), _case, t) for i, t in enumerate(cases_t, 1)]
    entries += [(_label("sweep", i, t), _sweep, t) for i, t in enumerate(sweeps_t, 1)]
    for label, parse, table in entries:
        try:
            made = parse(table, defaults)
        except Bad as e:
            raise error(where, f"{label}: {e}") from None
        for case in made:
            if case.name in owner:
                raise error(
                    where, f"{label}: duplicate case name {case.name!r} (also {owner[case.name]})"
                )
            owner[case.name] = label
            cases.append(replace(case, suite=name))
    return Suite(name, description, path, tuple(cases), measure)


def _load_file(path: Path) -> Suite:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read suite file {str(path)!r}: {e.strerror or e}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise error(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line 3, column 5)"
        raise error(str(path), f"invalid TOML: {e}") from None
    return _parse_document(doc, path)


# --- shipped suites and lookup -----------------------------------------------------------


def suite_names() -> list[str]:
    """Names of the shipped suites (each file's name is its suite's name, checked by tests)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def shipped_suites() -> list[Suite]:
    """Every shipped suite, loaded, sorted by name."""
    return [_load_file(SUITES_DIR / f"{name}.toml") for name in suite_names()]


def load_suite(name_or_path: str) -> Suite:
    """A suite file by path (anything with a / or ending .toml), else a shipped suite by name,
    else ``NAME`` or ``NAME.toml`` in the working directory: shipped names win, so a local
    file of a shipped suite's name is reached by its path (``./dcgan.toml``)."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or os.sep in name_or_path:
        return _load_file(Path(name_or_path))
    names = suite_names()
    if name_or_path in names:
        return _load_file(SUITES_DIR / f"{name_or_path}.toml")
    for local in (Path(name_or_path), Path(f"{name_or_path}.toml")) if name_or_path else ():
        if local.is_file():  # a suite file in the working directory
            return _load_file(local)
    raise InputError(
        f"unknown suite {name_or_path!r}{suggest(name_or_path, names)}; shipped suites: "
        f"{', '.join(names)} (or give the path of a .toml file)"
    )


