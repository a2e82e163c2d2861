"""The results CSV's schema: the one column list, the statuses, and a row's identity.

Every other module (the run that fills rows, the tables, ``compare``, ``merge``, ``report``)
takes the columns from here, so there is exactly one schema; docs/csv-schema.md describes
each column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

SCHEMA_VERSION = 1

CONTRACT_COLUMNS: tuple[str, ...] = (
    "schema_version", "run_id", "timestamp", "host", "tool_version", "suite", "case",
    "implementation", "backend", "algorithm", "device", "pass", "dtype", "batch",
    "in_channels", "out_channels", "groups", "input", "kernel", "stride", "padding",
    "output_padding", "dilation", "bias", "output", "status", "message", "samples",
    "median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "ci_low_ms",
    "ci_high_ms", "flops", "gflops", "peak_fraction", "max_abs_err", "max_rel_err",
    "peak_mem_mb", "threads", "samples_ms",
)  # fmt: skip
"""The first columns of every results file, in this order: the contract of schema version 1
(docs/csv-schema.md). Readers and scripts may rely on them."""

EXTRA_COLUMNS: tuple[str, ...] = (
    "ci_rel_halfwidth",  # half-width of the median's 95% CI over the median (fraction)
    "inner_loops",  # calls per sample (the calibrated repetition count)
    "stop_reason",  # precision | budget | max-samples: why sampling stopped
    "clock",  # perf_counter | cuda-event: what timed the samples
    "seed",  # the seed the inputs were drawn from
    "rounds",  # how many times the row was measured, spread over the run (run --rounds)
    "round_samples",  # samples per round, ;-joined: how samples_ms splits into rounds
    "minor_faults_per_call",  # page faults (fresh pages) of the process per timed call
    "major_faults_per_call",  # page faults that waited for the disk, per timed call
    "count",  # layers of the model (or a log's executions) with this problem (suite `count`)
    "cpu_ms_per_call",  # the process's CPU time while sampling, per timed call (ms)
    "cpu_time_ratio",  # that CPU time / (sampling wall time x threads): 1 = every thread busy
    "peak_fraction_all_products",  # gflops (cropped products too) / the same peak
)
"""Columns after the contract's (the contract allows extending it at the end)."""

COLUMNS: tuple[str, ...] = CONTRACT_COLUMNS + EXTRA_COLUMNS

STATUSES: tuple[str, ...] = (
    "ok", "mismatch", "unsupported", "unavailable", "error", "timeout", "crashed", "oom",
    "skipped",
)  # fmt: skip
FAILED_STATUSES = frozenset({"mismatch", "error", "crashed", "timeout", "oom"})
"""Statuses that say something went wrong (rather than: not run, on purpose or not). ``run``
and ``verify`` exit 1 on them (oom too: the user asked for that row); ``compare`` calls a
row that turned into one ``failed``."""

KEY_COLUMNS: tuple[str, ...] = ("suite", "case", "implementation", "pass", "dtype")
"""The identity of a row: at most one row per key in a results file."""
PROBLEM_COLUMNS: tuple[str, ...] = (
    "batch", "in_channels", "out_channels", "groups", "input", "kernel", "stride", "padding",
    "output_padding", "dilation", "bias",
)  # fmt: skip
MATCH_COLUMNS: tuple[str, ...] = KEY_COLUMNS + PROBLEM_COLUMNS
"""Two rows of different files are the same measurement when all of these agree."""

INT_COLUMNS = frozenset(
    {"schema_version", "batch", "in_channels", "out_channels", "groups", "samples", "flops",
     "threads", "inner_loops", "seed", "rounds", "count"}
)  # fmt: skip
FLOAT_COLUMNS = frozenset(
    {"median_ms", "mean_ms", "stddev_ms", "min_ms", "max_ms", "q1_ms", "q3_ms", "ci_low_ms",
     "ci_high_ms", "gflops", "peak_fraction", "max_abs_err", "max_rel_err", "peak_mem_mb",
     "ci_rel_halfwidth", "minor_faults_per_call", "major_faults_per_call", "cpu_ms_per_call",
     "cpu_time_ratio", "peak_fraction_all_products"}
)  # fmt: skip
BOOL_COLUMNS = frozenset({"bias"})

RowLike = Mapping[str, object]
"""A row as column → value: a :class:`~deconvbench.results.row.ResultRow` from a run, or a
record read back from a file (strings, NaN for empty cells)."""


class RowKey(NamedTuple):
    """A row's identity (:data:`KEY_COLUMNS`), each value as text."""

    suite: str
    case: str
    implementation: str
    pass_: str
    dtype: str


def row_key(row: RowLike) -> RowKey:
    return RowKey(*(str(row[c]) for c in KEY_COLUMNS))
