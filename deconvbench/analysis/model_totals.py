"""A model's time per strategy: count × median summed over the model's cases.

A suite imported from a model (``deconvbench import``) gives each case a ``count``: how many
of the model's layers have its problem. The rows then answer for the model as a whole:

- per strategy, the sum of count × median over the cases, forward, backward and both, for a
  strategy ok on every case of that pass (a strategy that fails or can't take one layer
  can't run the model);
- the best-per-layer mix: each case run by its fastest ok strategy, and that mix's time;
- the speedup of the mix over the baseline strategy (named, else the device's native one:
  ``speedups.default_baseline``).

Pure: rows in (from a run or a file), numbers out; ``render/table.py`` shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..problem import PASSES
from ..results.fields import number
from ..results.schema import RowLike
from .matching import cell
from .speedups import default_baseline

MIX = "best per layer"


@dataclass(frozen=True)
class Total:
    """One strategy's (or the mix's) time for the whole model, in ms; None where it can't
    run every case of that pass."""

    implementation: str
    forward_ms: float | None
    backward_ms: float | None

    @property
    def both_ms(self) -> float | None:
        if self.forward_ms is None or self.backward_ms is None:
            return None
        return self.forward_ms + self.backward_ms


@dataclass(frozen=True)
class ModelTotals:
    """The totals of one model (a suite with counts), on one device and dtype."""

    suite: str
    dtype: str
    device: str
    cases: int
    layers: int
    totals: tuple[Total, ...]
    """Every strategy that can run the whole model in some pass, fastest (both) first."""
    mix: Total
    choices: dict[str, dict[str, str]]
    """pass → case → the strategy the mix runs it with."""
    baseline: str | None

    def speedup(self, pass_: str) -> float | None:
        """The mix's speedup over the baseline for ``forward``, ``backward`` or ``both``."""
        base = next((t for t in self.totals if t.implementation == self.baseline), None)
        if base is None:
            return None
        attribute = f"{pass_}_ms"
        mine, theirs = getattr(self.mix, attribute), getattr(base, attribute)
        return theirs / mine if mine and theirs else None


def _median(row: RowLike) -> float | None:
    median = number(row.get("median_ms"))
    ok = cell(row.get("status")) == "ok" and median is not None and median > 0
    return median if ok else None


def model_totals(rows: Sequence[RowLike], baseline: str | None = None) -> list[ModelTotals]:
    """The totals of every (suite, dtype, device) whose rows carry a count."""
    groups: dict[tuple[str, str, str], list[RowLike]] = {}
    for row in rows:
        if number(row.get("count")) is not None:
            key = (cell(row.get("suite")), cell(row.get("dtype")), cell(row.get("device")))
            groups.setdefault(key, []).append(row)
    return [_totals(key, members, baseline) for key, members in groups.items()]


def _totals(key: tuple[str, str, str], rows: list[RowLike], named: str | None) -> ModelTotals:
    suite, dtype, device = key
    counts = {cell(r.get("case")): int(number(r.get("count")) or 1) for r in rows}
    # the cases each pass has rows of (a case may be forward only: an inference log's), and
    # medians[pass][case][implementation] of the ok rows
    cases: dict[str, list[str]] = {p: [] for p in PASSES}
    medians: dict[str, dict[str, dict[str, float]]] = {p: {} for p in PASSES}
    for r in rows:
        pass_, case = cell(r.get("pass")), cell(r.get("case"))
        if pass_ not in cases:
            continue
        if case not in cases[pass_]:
            cases[pass_].append(case)
        median = _median(r)
        if median is not None:
            medians[pass_].setdefault(case, {})[cell(r.get("implementation"))] = median

    def total(pass_: str, pick: dict[str, str] | None = None, impl: str = "") -> float | None:
        """count × median over the pass's cases, each run by ``impl`` (or by ``pick``'s
        choice for it); None when one of them has no such time."""
        measured, times = medians[pass_], []
        for case in cases[pass_]:
            chosen = pick.get(case, "") if pick is not None else impl
            if chosen not in measured.get(case, {}):
                return None
            times.append(counts[case] * measured[case][chosen])
        return sum(times) if times else None

    impls = sorted({cell(r.get("implementation")) for r in rows})
    totals = [Total(i, total("forward", impl=i), total("backward", impl=i)) for i in impls]
    totals = [t for t in totals if t.forward_ms is not None or t.backward_ms is not None]
    choices: dict[str, dict[str, str]] = {
        p: {c: min(medians[p][c], key=medians[p][c].__getitem__) for c in medians[p]}
        for p in PASSES
    }
    mix = Total(MIX, total("forward", choices["forward"]), total("backward", choices["backward"]))
    order = sorted(totals, key=lambda t: (t.both_ms is None, t.both_ms or t.forward_ms or 0.0))
    return ModelTotals(
        suite, dtype, device, len(counts), sum(counts.values()), tuple(order), mix, choices,
        named or default_baseline(device, rows),
    )  # fmt: skip
