"""A results row as a typed value: what the run builds, the writer writes and tables show.

:class:`ResultRow` holds the row's parts as Python values (the :class:`Problem`, the
:class:`Timing`, the notes); it is also a read-only mapping from column name to value, the
row as the CSV and the renderers see it. That mapping is made in one place,
:meth:`ResultRow.record`, so the typed row and the written one cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from ..harness.notes import SEPARATOR, Note
from ..problem import Pass, Problem, format_tuple
from .fields import parse_tuple
from .schema import COLUMNS, SCHEMA_VERSION, RowLike


@dataclass(frozen=True)
class Timing:
    """The timing columns of a measured row (times in ms per call)."""

    samples_ms: tuple[float, ...]
    median_ms: float
    mean_ms: float
    stddev_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    ci_low_ms: float | None
    ci_high_ms: float | None
    ci_rel_halfwidth: float | None
    gflops: float | None
    peak_fraction: float | None
    inner_loops: int
    stop_reason: str
    clock: str
    round_samples: tuple[int, ...]
    """Samples per round, in order: how ``samples_ms`` splits into rounds."""
    faults_per_call: tuple[float, float] | None = None
    """(minor, major) page faults of the process per timed call; None when not counted."""
    cpu_ms_per_call: float | None = None
    """The process's CPU time while sampling per timed call (ms); None when not counted."""
    cpu_time_ratio: float | None = None
    """That CPU time over (sampling wall time x threads); None when not counted."""
    peak_fraction_all_products: float | None = None
    """``gflops`` (every product, cropped ones too) over the same peak as ``peak_fraction``."""


@dataclass(frozen=True, eq=False)
class ResultRow(Mapping[str, object]):
    """One (case, strategy, pass) of a run: its identity, problem, status and results."""

    run_id: str
    timestamp: str
    host: str
    tool_version: str
    suite: str
    case: str
    implementation: str
    backend: str
    algorithm: str
    device: str
    pass_: Pass
    problem: Problem
    status: str
    threads: int | None
    seed: int | None
    reason: str = ""
    """Why a row is not ok (empty for ok rows)."""
    notes: tuple[Note, ...] = ()
    """What an ok row says about how far to trust it."""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    peak_mem_mb: float | None = None
    timing: Timing | None = None
    count: int | None = None
    """How many of the model's layers have this problem (the case's ``count``)."""
    traceback: str = ""
    """The failure's traceback (not a column: ``--debug`` shows it)."""

    @property
    def message(self) -> str:
        """The ``message`` column: the reason, then the notes."""
        return SEPARATOR.join([*filter(None, [self.reason]), *(n.text for n in self.notes)])

    @cached_property
    def record(self) -> dict[str, object]:
        """Column → value, in schema order (tuples as ``4x4``; empty results as None)."""
        p, t = self.problem, self.timing
        values: dict[str, object] = dict.fromkeys(COLUMNS)
        values.update(
            schema_version=SCHEMA_VERSION, run_id=self.run_id, timestamp=self.timestamp,
            host=self.host, tool_version=self.tool_version, suite=self.suite, case=self.case,
            implementation=self.implementation, backend=self.backend,
            algorithm=self.algorithm, device=self.device, dtype=p.dtype, batch=p.batch,
            in_channels=p.in_channels, out_channels=p.out_channels, groups=p.groups,
            input=format_tuple(p.input), kernel=format_tuple(p.kernel),
            stride=format_tuple(p.stride), padding=format_tuple(p.padding),
            output_padding=format_tuple(p.output_padding), dilation=format_tuple(p.dilation),
            bias=p.bias, output=format_tuple(p.output), status=self.status,
            message=self.message, flops=p.flops(self.pass_), max_abs_err=self.max_abs_err,
            max_rel_err=self.max_rel_err, peak_mem_mb=self.peak_mem_mb, threads=self.threads,
            seed=self.seed, count=self.count,
        )  # fmt: skip
        values["pass"] = self.pass_
        if t is not None:
            values.update(
                samples=len(t.samples_ms), median_ms=t.median_ms, mean_ms=t.mean_ms,
                stddev_ms=t.stddev_ms, min_ms=t.min_ms, max_ms=t.max_ms, q1_ms=t.q1_ms,
                q3_ms=t.q3_ms, ci_low_ms=t.ci_low_ms, ci_high_ms=t.ci_high_ms,
                gflops=t.gflops, peak_fraction=t.peak_fraction, samples_ms=t.samples_ms,
                ci_rel_halfwidth=t.ci_rel_halfwidth, inner_loops=t.inner_loops,
                stop_reason=t.stop_reason, clock=t.clock, rounds=len(t.round_samples),
                round_samples=";".join(str(n) for n in t.round_samples),
                cpu_ms_per_call=t.cpu_ms_per_call, cpu_time_ratio=t.cpu_time_ratio,
                peak_fraction_all_products=t.peak_fraction_all_products,
            )  # fmt: skip
            if t.faults_per_call is not None:
                values["minor_faults_per_call"], values["major_faults_per_call"] = (
                    t.faults_per_call
                )
        return values

    def __getitem__(self, column: str) -> object:
        return self.record[column]

    def __iter__(self) -> Iterator[str]:
        return iter(COLUMNS)

    def __len__(self) -> int:
        return len(COLUMNS)


def problem_of(row: RowLike) -> Problem:
    """The problem a row measured, from its columns (a run's row or one read from a file)."""
    return Problem.create(
        batch=int(str(row["batch"])), in_channels=int(str(row["in_channels"])),
        out_channels=int(str(row["out_channels"])), input=parse_tuple(row["input"]),
        kernel=parse_tuple(row["kernel"]), stride=parse_tuple(row["stride"]),
        padding=parse_tuple(row["padding"]), output_padding=parse_tuple(row["output_padding"]),
        dilation=parse_tuple(row["dilation"]), groups=int(str(row["groups"])),
        bias=row["bias"] is True or str(row["bias"]).lower() == "true", dtype=str(row["dtype"]),
    )  # fmt: skip
