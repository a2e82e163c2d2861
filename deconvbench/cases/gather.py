"""The cases a command names: its suites' cases, then its ``--case`` strings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from ..problem import DTYPES
from .case import Case
from .case_spec import parse_case
from .measure_table import MeasureRequest
from .suite_file import load_suite


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


def measure_requests(suites: list[str], case_specs: list[str]) -> list[tuple[str, MeasureRequest]]:
    """What each source of cases asks of the timing: every named suite's ``[measure]`` table
    (empty when it has none), and the run's defaults for ``--case`` strings, labelled
    ``suite 'smoke'`` or ``--case``."""
    requests = {f"suite {s.name!r}": s.measure for s in map(load_suite, suites)}
    if case_specs:
        requests["--case"] = MeasureRequest()
    return list(requests.items())
