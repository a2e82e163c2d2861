"""Choosing, per (problem, device, pass), the strategy a model should run: a pure function of
results files.

The rule is the CI gate's (``compare.judge_times``): inside one measured case, a strategy
replaces torch's native one only when it is *improved* against it, beyond the threshold
and significant, by the rounds test when the run had rounds. Among those, the fastest wins.
Otherwise the native strategy stays, and the entry says why (the fastest contender's
verdict). Only ``ok`` rows count: a mismatched, failed or unsupported row is never chosen.
The user may narrow the contenders with strategy globs (``--impl``, ``--exclude``): a model
on the CPU runs best with strategies that share torch's thread pool (docs/nn.md).

The native strategy is ``torch-<device>/native`` because that is what the drop-in layer
falls back to: a problem whose native row is missing or not ok gets no entry (it would have
nothing to be compared with), and is listed as skipped.

A backward entry that replaces native also records the chosen strategy's forward time in
the same case (``forward_ms``): ``deconvbench.nn`` needs it when that strategy's backward
must first rebuild its autograd graph.

A problem measured in several cases (or files) is decided by the first case that measured
it with its native strategy, in file order then row order; the entry's ``source`` names it.
All files must come from one machine: their fingerprints (``env/fingerprint.py``) must
agree.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from ..env.fingerprint import Fingerprint, differences, fingerprint, for_backends
from ..errors import InputError, ProblemError
from ..problem import Pass, Problem
from ..results.fields import parse_samples
from ..results.plan_file import PASSES, Plan, PlanEntry, PlanKey, plan_key
from ..results.row import problem_of
from ..results.schema import RowLike
from .compare import Threshold, Timing, judge_times, round_sizes, typical_of
from .matching import cell, index_rows
from .significance import Drift, Statistic, statistic_of


@dataclass(frozen=True)
class PlanSource:
    """One results file: its name (for messages), its rows and its sidecar's facts."""

    name: str
    frame: pd.DataFrame
    facts: Mapping[str, object]


@dataclass(frozen=True)
class Skipped:
    problem: Problem
    device: str
    pass_: str
    reason: str


@dataclass(frozen=True)
class Planned:
    plan: Plan
    skipped: tuple[Skipped, ...]


def _facts_fingerprint(facts: Mapping[str, object], name: str) -> Fingerprint:
    env = facts.get("env")
    if not isinstance(env, Mapping):
        raise InputError(f"{name}: its sidecar has no 'env' facts: a plan needs the machine")
    threads = facts.get("threads")
    count = threads.get("threads") if isinstance(threads, Mapping) else None
    return fingerprint(env, count if isinstance(count, int) else None,
                       str(facts.get("tool_version", "")))  # fmt: skip


def source_fingerprint(source: PlanSource) -> Fingerprint:
    """The machine a file was measured on, from its sidecar (``env`` and ``threads``); a
    merged file's from its sources' facts, which must agree."""
    merged = source.facts.get("merged_from")
    if not isinstance(merged, list):
        return _facts_fingerprint(source.facts, source.name)
    prints = [
        _facts_fingerprint(
            part.get("facts") or {}, f"{source.name} (merged from {part.get('path')})"
        )
        for part in merged
        if isinstance(part, Mapping)
    ]
    if not prints:
        raise InputError(f"{source.name}: its sidecar lists no merged sources")
    for other in prints[1:]:
        if differ := differences(prints[0], other):
            raise InputError(f"{source.name}: merged from runs under different conditions "
                             f"({'; '.join(differ)})")  # fmt: skip
    return prints[0]


def _one_machine(sources: Sequence[PlanSource]) -> Fingerprint:
    first = source_fingerprint(sources[0])
    for other in sources[1:]:
        differ = differences(first, source_fingerprint(other))
        if differ:
            raise InputError(
                f"{sources[0].name} and {other.name} were measured under different conditions "
                f"({'; '.join(differ)}): a plan is for one machine"
            )
    return first


@dataclass(frozen=True)
class _Case:
    """The rows of one measured case of one file, by strategy."""

    label: str
    problem: Problem
    device: str
    pass_: Pass
    rows: dict[str, RowLike]
    typical: Drift


def _cases(source: PlanSource, statistic: Statistic) -> list[_Case]:
    indexed = index_rows(source.frame, source.name)
    typical = typical_of(indexed, statistic)
    groups: dict[tuple[str, ...], _Case] = {}
    for row in indexed.values():
        ident = tuple(cell(row.get(c)) for c in ("suite", "case", "pass", "dtype", "device"))
        if ident not in groups:
            try:
                problem = problem_of(row)
            except (ProblemError, ValueError, KeyError) as e:
                raise InputError(f"{source.name}: row {'/'.join(ident[:2])}: {e}") from None
            label = f"{source.name}: {ident[0]}/{ident[1]}"
            if ident[2] not in PASSES:
                raise InputError(f"{label}: unknown pass {ident[2]!r}")
            groups[ident] = _Case(label, problem, ident[4], ident[2], {}, typical)
        groups[ident].rows[cell(row.get("implementation"))] = row
    return list(groups.values())


def _samples(row: RowLike) -> list[float]:
    if cell(row.get("status")) != "ok":
        return []
    return parse_samples(row.get("samples_ms"))


def _entry(case: _Case, native: str, contender: str, timing: Timing, reason: str,
           chosen: bool) -> PlanEntry:  # fmt: skip
    """An entry from the numbers behind the verdict (compare's ``timing``)."""
    native_ms, chosen_ms = _float(timing["baseline_ms"]), _float(timing["candidate_ms"])
    low, high, p = (timing.get(k) for k in ("ratio_ci_low", "ratio_ci_high", "p_value"))
    return PlanEntry(
        problem=case.problem, device=case.device, pass_=case.pass_,
        strategy=contender if chosen else native, native=native,
        native_ms=native_ms, strategy_ms=chosen_ms, speedup=native_ms / chosen_ms,
        # compare's interval is of candidate / baseline: the speedup's is its inverse
        ci_low=1.0 / _float(high) if high else None, ci_high=1.0 / _float(low) if low else None,
        p_value=_float(p) if p is not None else None, contender=contender, reason=reason,
        source=case.label,
    )  # fmt: skip


def _float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]  # a number of compare's Timing


def candidate(name: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether strategy ``name`` may be chosen: it matches an ``include`` glob (any name when
    there is none) and no ``exclude`` glob."""
    matches = functools.partial(fnmatch.fnmatchcase, name)
    return (not include or any(map(matches, include))) and not any(map(matches, exclude))


def _decide(case: _Case, native: str, threshold: Threshold, alpha: float,
            allowed: Callable[[str], bool]) -> PlanEntry:  # fmt: skip
    base = _samples(case.rows[native])
    stat = threshold.statistic
    contenders = sorted(
        (statistic_of(s, stat), name, s)
        for name, row in case.rows.items()
        if name != native and allowed(name) and (s := _samples(row))
    )
    native_stat = statistic_of(base, stat)
    if not contenders or contenders[0][0] >= native_stat:
        timing: Timing = {"baseline_ms": native_stat, "candidate_ms": native_stat}
        return _entry(case, native, native, timing, f"{native} is the fastest measured", False)
    typical = (case.typical, case.typical)
    native_rounds = round_sizes(case.rows[native], len(base))
    verdicts = []
    for _, name, samples in contenders:
        rounds = (native_rounds, round_sizes(case.rows[name], len(samples)))
        verdict, reason, timing = judge_times(base, samples, threshold, alpha, rounds, typical)
        verdicts.append((name, verdict, reason, timing))
    improved = [v for v in verdicts if v[1] == "improved"]
    if improved:
        name, _, reason, timing = min(improved, key=lambda v: _float(v[3]["candidate_ms"]))
        return _entry(case, native, name, timing, reason, True)
    name, verdict, reason, timing = verdicts[0]
    return _entry(case, native, name, timing, f"kept {native}: {name} {verdict}: {reason}", False)


def make_plan(
    sources: Sequence[PlanSource], threshold: Threshold, alpha: float, created_at: str,
    tool_version: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
) -> Planned:  # fmt: skip
    """The plan for every (problem, device, pass) the files measured with torch's native
    strategy; the others are returned as skipped, with the reason. Only strategies that
    :func:`candidate` admits may replace native."""
    if not sources:
        raise InputError("plan: no results files given")
    machine = _one_machine(sources)
    allowed = functools.partial(candidate, include=include, exclude=exclude)
    entries: dict[PlanKey, PlanEntry] = {}
    skipped: dict[PlanKey, Skipped] = {}
    for source in sources:
        cases = _cases(source, threshold.statistic)
        forwards = {(c.label, c.problem.spec()): c for c in cases if c.pass_ == "forward"}
        for case in cases:
            key = plan_key(case.problem, case.device, case.pass_)
            if key in entries:
                continue
            native = f"torch-{case.device}/native"
            if not _samples(case.rows.get(native, {})):
                status = cell(case.rows[native].get("status")) if native in case.rows else ""
                why = f"{native} is {status}" if status else f"{native} was not measured"
                skipped.setdefault(key, Skipped(case.problem, case.device, case.pass_,
                                                f"{why} ({case.label})"))  # fmt: skip
                continue
            entry = _decide(case, native, threshold, alpha, allowed)
            forward = forwards.get((case.label, case.problem.spec()))
            if case.pass_ == "backward" and entry.replaces_native and forward is not None:
                samples = _samples(forward.rows.get(entry.strategy, {}))
                if samples:
                    entry = replace(entry, forward_ms=statistic_of(samples, threshold.statistic))
            entries[key] = entry
            skipped.pop(key, None)
    chosen = tuple(entries.values())
    backends = {e.strategy.split("/", 1)[0] for e in chosen}
    plan = Plan(
        fingerprint=for_backends(machine, backends),
        rule={
            "statistic": threshold.statistic,
            "threshold": threshold.fraction,
            "alpha": alpha,
            "impl": list(include),
            "exclude": list(exclude),
        },
        entries=chosen,
        sources=tuple(_source_facts(s) for s in sources),
        created_at=created_at,
        tool_version=tool_version,
    )
    return Planned(plan, tuple(skipped.values()))


def _source_facts(source: PlanSource) -> dict[str, object]:
    return {"path": source.name, "run_id": source.facts.get("run_id"),
            "started_at": source.facts.get("started_at")}  # fmt: skip
