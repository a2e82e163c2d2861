"""The plan file: for each (problem, device, pass), the strategy to run, and why.

``deconvbench plan`` writes it (``analysis/plan.py`` chooses), ``deconvbench plan show``
prints it and ``deconvbench.nn`` runs it. JSON, one object:

- ``format`` (``"deconvbench-plan"``) and ``format_version`` (:data:`PLAN_FORMAT_VERSION`):
  a reader refuses any other version with one line;
- ``created_at``, ``tool_version``, ``sources`` (the results files: path, run id);
- ``fingerprint``: the machine and libraries the choices were measured on
  (``env/fingerprint.py``);
- ``rule``: how a strategy beat the native one (statistic, threshold, alpha);
- ``entries``: one per (problem, device, pass) measured with its native strategy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from ..errors import InputError, ProblemError
from ..problem import Pass, Problem
from .sidecar import atomic_write

PLAN_FORMAT = "deconvbench-plan"
PLAN_FORMAT_VERSION = 1
PASSES: tuple[Pass, ...] = ("forward", "backward")
PROBLEM_FIELDS = (
    "batch", "in_channels", "out_channels", "input", "kernel", "stride", "padding",
    "output_padding", "dilation", "groups", "bias", "dtype",
)  # fmt: skip

PlanKey = tuple[str, str, str]
"""``(problem.spec(), device, pass)``: what a call looks up."""


def plan_key(problem: Problem, device: str, pass_: str) -> PlanKey:
    return (problem.spec(), device, pass_)


@dataclass(frozen=True)
class PlanEntry:
    """The choice for one (problem, device, pass), with the evidence behind it."""

    problem: Problem
    device: str
    pass_: Pass
    strategy: str
    """What to run: ``native`` itself unless another strategy was faster beyond the noise."""
    native: str
    native_ms: float
    strategy_ms: float
    """The two times the verdict compared (the fastest round's median, with rounds)."""
    speedup: float
    """``native_ms / strategy_ms`` of the fastest contender (1.0 when none was measured)."""
    ci_low: float | None
    ci_high: float | None
    """The speedup's confidence interval (None without a test)."""
    p_value: float | None
    contender: str
    """The fastest strategy by median: the chosen one, or the one the noise kept out."""
    reason: str
    source: str
    """``file: suite/case`` of the contender's row."""
    forward_ms: float | None = None
    """For a backward entry that replaces native: the chosen strategy's forward time in the
    same measurement (what rebuilding its autograd graph costs ``deconvbench.nn``); None
    otherwise, or when its forward was not measured."""

    @property
    def key(self) -> PlanKey:
        return plan_key(self.problem, self.device, self.pass_)

    @property
    def replaces_native(self) -> bool:
        return self.strategy != self.native


@dataclass(frozen=True)
class Plan:
    fingerprint: Mapping[str, object]
    rule: Mapping[str, object]
    entries: tuple[PlanEntry, ...]
    sources: tuple[Mapping[str, object], ...] = ()
    created_at: str = ""
    tool_version: str = ""
    _index: dict[PlanKey, PlanEntry] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update((e.key, e) for e in self.entries)

    def lookup(self, problem: Problem, device: str, pass_: str) -> PlanEntry | None:
        return self._index.get(plan_key(problem, device, pass_))

    @property
    def backends(self) -> set[str]:
        """The backends of every chosen strategy."""
        return {e.strategy.split("/", 1)[0] for e in self.entries}


def _entry_json(entry: PlanEntry) -> dict[str, object]:
    values = asdict(entry)
    values.pop("problem")
    values["pass"] = values.pop("pass_")
    problem = {name: getattr(entry.problem, name) for name in PROBLEM_FIELDS}
    return {"problem": {k: list(v) if isinstance(v, tuple) else v for k, v in problem.items()},
            **values}  # fmt: skip


def plan_json(plan: Plan) -> dict[str, object]:
    return {
        "format": PLAN_FORMAT,
        "format_version": PLAN_FORMAT_VERSION,
        "created_at": plan.created_at,
        "tool_version": plan.tool_version,
        "sources": [dict(s) for s in plan.sources],
        "fingerprint": dict(plan.fingerprint),
        "rule": dict(plan.rule),
        "entries": [_entry_json(e) for e in plan.entries],
    }


def write_plan(plan: Plan, path: Path) -> None:
    """Write atomically: a reader sees the old plan or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plan_json(plan), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text))


# --- reading: every problem one line --------------------------------------------------------


def _need(obj: Mapping[str, object], key: str, kind: type | tuple[type, ...], where: str) -> object:
    if key not in obj:
        raise InputError(f"{where}: missing {key!r}")
    value = obj[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise InputError(f"{where}: {key!r} must be a number, got {value!r}")
    if not isinstance(value, kind):
        raise InputError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _number(obj: Mapping[str, object], key: str, where: str, optional: bool = False) -> float:
    value = obj.get(key)
    if optional and value is None:
        return math.nan
    number = float(cast(float, _need(obj, key, (int, float), where)))
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{where}: {key!r} must be a finite number >= 0, got {value!r}")
    return number


def _problem(raw: object, where: str) -> Problem:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: 'problem' must be an object")
    unknown = set(raw) - set(PROBLEM_FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown problem keys {sorted(unknown)}")
    missing = [k for k in PROBLEM_FIELDS if k not in raw]
    if missing:
        raise InputError(f"{where}: missing problem keys {missing}")
    try:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return Problem.create(**values)  # type: ignore[arg-type]  # Problem checks each value
    except ProblemError as e:
        raise InputError(f"{where}: {e}") from None
    except TypeError as e:
        raise InputError(f"{where}: bad problem: {e}") from None


def _entry(raw: object, where: str) -> PlanEntry:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: must be an object")
    pass_ = _need(raw, "pass", str, where)
    if pass_ not in PASSES:
        raise InputError(f"{where}: 'pass' must be forward or backward, got {pass_!r}")
    optional = {
        k: _number(raw, k, where, optional=True)
        for k in ("ci_low", "ci_high", "p_value", "forward_ms")
    }
    return PlanEntry(
        problem=_problem(raw.get("problem"), where),
        device=str(_need(raw, "device", str, where)),
        pass_=pass_,
        strategy=str(_need(raw, "strategy", str, where)),
        native=str(_need(raw, "native", str, where)),
        native_ms=_number(raw, "native_ms", where),
        strategy_ms=_number(raw, "strategy_ms", where),
        speedup=_number(raw, "speedup", where),
        ci_low=None if math.isnan(optional["ci_low"]) else optional["ci_low"],
        ci_high=None if math.isnan(optional["ci_high"]) else optional["ci_high"],
        p_value=None if math.isnan(optional["p_value"]) else optional["p_value"],
        contender=str(_need(raw, "contender", str, where)),
        reason=str(_need(raw, "reason", str, where)),
        source=str(_need(raw, "source", str, where)),
        forward_ms=None if math.isnan(optional["forward_ms"]) else optional["forward_ms"],
    )


def parse_plan(data: object, name: str) -> Plan:
    """A plan from its JSON value; :class:`InputError` naming the first problem."""
    if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
        raise InputError(f'{name}: not a deconvbench plan (no "format": "{PLAN_FORMAT}")')
    version = data.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise InputError(
            f"{name}: plan format version {version!r} is not supported (this deconvbench "
            f"reads version {PLAN_FORMAT_VERSION}); make the plan again with `deconvbench plan`"
        )
    fingerprint = _need(data, "fingerprint", Mapping, name)
    rule = _need(data, "rule", Mapping, name)
    raw_entries = _need(data, "entries", list, name)
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, Mapping) for s in sources):
        raise InputError(f"{name}: 'sources' must be a list of objects")
    entries = tuple(
        _entry(raw, f"{name}: entry {i + 1}")
        for i, raw in enumerate(cast(list[object], raw_entries))
    )
    seen: dict[PlanKey, int] = {}
    for i, entry in enumerate(entries):
        if entry.key in seen:
            raise InputError(
                f"{name}: entries {seen[entry.key] + 1} and {i + 1} are the same "
                f"(problem, device, pass)"
            )
        seen[entry.key] = i
    return Plan(
        fingerprint=dict(cast(Mapping[str, object], fingerprint)),
        rule=dict(cast(Mapping[str, object], rule)),
        entries=entries,
        sources=tuple(dict(s) for s in sources),
        created_at=str(data.get("created_at", "")),
        tool_version=str(data.get("tool_version", "")),
    )


def read_plan(path: Path) -> Plan:
    """Read and validate a plan file; :class:`InputError` (one line) on anything wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot read the plan: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a plan (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    return parse_plan(data, str(path))
