"""The command line's options: their typer annotations, and what their values mean.

Parsing and checks are pure functions, apart from reading the registry, so each rule is
tested directly; every bad value raises :class:`InputError` (or :class:`Unavailable`) with one
line naming the option, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from .. import registry
from ..analysis.compare import STATISTICS, Threshold
from ..backends.strategy import Strategy
from ..errors import InputError, Unavailable
from ..problem import DTYPES, PASSES, Pass
from ..run import footprint
from ..run.footprint import MemoryLimit
from ..run.types import MAX_ROUNDS, RunOptions

Note = Callable[[str], None]

# --- options shared by run and verify ---------------------------------------------------------

SuiteOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--suite",
        "-s",
        metavar="NAME|FILE",
        help="A shipped suite's name, or a suite file (.toml); a bare name that is not "
        "shipped is tried as NAME or NAME.toml in the working directory (repeatable).",
    ),
]
CaseOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--case",
        "-c",
        metavar="SPEC",
        help="One problem as key=value pairs, keys as in suite files, e.g. "
        "'in_channels=64, out_channels=32, input=16x16, kernel=4, stride=2, padding=1' "
        "(repeatable).",
    ),
]
ImplOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--impl",
        "-i",
        metavar="GLOB",
        help="Strategy glob, e.g. 'numpy/*' or '*/subpixel' "
        "(repeatable; default: every strategy available here).",
    ),
]
PassOpt = Annotated[
    str | None,
    typer.Option(
        "--pass", metavar="PASS", help="forward, backward or all (default: each case's own passes)."
    ),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--dtype", metavar="DTYPE", help="Override every case's dtype: float32, float64, ..."
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        "-t",
        min=1,
        metavar="N",
        help="Threads for torch, BLAS and numba (default: all cores).",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the generated inputs.")]
MaxMemoryOpt = Annotated[
    str,
    typer.Option(
        "--max-memory",
        metavar="SIZE",
        help="Skip a measurement whose estimated memory exceeds this: 8GB, 512MiB, 75% "
        "(of the RAM, or for CUDA of the GPU memory, available at the start), or none.",
    ),
]
DEFAULT_MAX_MEMORY = f"{footprint.DEFAULT_SHARE:.0%}"
DEFAULT_ROUNDS = 3
"""Rounds of ``run``: enough for compare to see the drift between rounds (run/rounds.py)."""
FormatOpt = Annotated[str, typer.Option("--format", metavar="FORMAT", help="table or json.")]


# --- run's own -------------------------------------------------------------------------------

OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Results CSV (default: deconvbench-<timestamp>.csv in results/); run facts "
        "go to <output>.json.",
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue an existing output, skipping its rows.")
]
SUITE_OR_DEFAULT = "default: {}, or what the suites' [measure] tables ask"
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget",
        metavar="SECONDS",
        help="At most this many seconds sampling a measurement "
        f"({SUITE_OR_DEFAULT.format('1.0')}).",
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        metavar="FRACTION",
        help="Target half-width of the median's 95% CI, relative: 2% or 0.02 "
        f"({SUITE_OR_DEFAULT.format('2%')}).",
    ),
]
MinSamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--min-samples",
        min=1,
        metavar="N",
        help=f"Fewest samples ({SUITE_OR_DEFAULT.format('5')}).",
    ),
]
WarmupOpt = Annotated[
    float | None,
    typer.Option(
        "--warmup",
        min=0.0,
        metavar="SECONDS",
        help="Warm-up before each measurement's calibration "
        f"({SUITE_OR_DEFAULT.format('0.05')}).",
    ),
]
RoundsOpt = Annotated[
    int,
    typer.Option(
        "--rounds",
        metavar="N",
        min=1,
        max=MAX_ROUNDS,
        help="Measure every row this many times, each in its own pass over the run, so "
        "the results (and compare) see the machine's drift; the budget is shared.",
    ),
]
BaselineImplOpt = Annotated[
    str | None,
    typer.Option(
        "--baseline-impl",
        metavar="STRATEGY",
        help="Speedups against this strategy, added to the run "
        "(default: the native strategy on each device).",
    ),
]
L2FlushOpt = Annotated[
    bool, typer.Option("--l2-flush", help="Flush the GPU's L2 cache between samples.")
]
ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", metavar="I/N", help="Run part I of N (whole cases, round-robin): 2/8."),
]
IsolateOpt = Annotated[
    bool, typer.Option("--isolate", help="Each measurement in a worker process.")
]
MemoryStateOpt = Annotated[
    str,
    typer.Option(
        "--memory-state",
        metavar="STATE",
        help="warm: the allocator reuses freed memory, as a long-running program's does; "
        "cold: every call meets fresh pages, as in a fresh process (docs/measurement.md).",
    ),
]
AllocatorOpt = Annotated[
    str | None,
    typer.Option(
        "--allocator",
        metavar="NAME",
        help="jemalloc or tcmalloc: run the measurements in worker processes (as --isolate) "
        "with this allocator preloaded (default: the process's own).",
    ),
]
VerifyOutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Also write the rows to this results CSV (timing columns empty) and its "
        "sidecar <output>.json (default: no file).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", metavar="SECONDS", help="With --isolate: kill a worker after this (s)."
    ),
]


# --- what the values mean ---------------------------------------------------------------------


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 case``, ``2 cases``; ``nouns`` for an irregular plural (``strategies``)."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def available_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def note_oversubscription(threads: int | None, note: Note, cores: int | None = None) -> None:
    """One line when ``--threads`` asks for more threads than there are cores (kept: a user
    may mean it, but timings then include the threads' contention)."""
    cores = available_cores() if cores is None else cores
    if threads is not None and threads > cores:
        note(
            f"--threads {threads} oversubscribes the {plural(cores, 'available core')}: "
            "threads will compete, and timings include that"
        )


def fraction(text: str) -> tuple[float, bool]:
    """``5%`` → (0.05, True); ``0.05`` → (0.05, False); anything else → (NaN, ...): the
    callers check the range each option allows."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        value = math.nan
    return (value / 100 if percent else value), percent


def check_format(value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InputError(f"--format: expected one of {', '.join(allowed)}, got {value!r}")
    return value


def parse_precision(text: str) -> float:
    """``2%`` or ``0.02`` → 0.02 (the target relative half-width of the median's 95% CI)."""
    value, _ = fraction(text)
    if not 0 < value < 1:
        raise InputError(
            f"--precision: expected a fraction in (0, 1) like 0.02 or a percentage like 2%, "
            f"got {text!r}"
        )
    return value


def parse_threshold(text: str) -> Threshold:
    """``5%``, ``0.05``, ``median:5%``, ``min:3%``, ``mean:0.02`` → :class:`Threshold`."""
    name, sep, amount = text.strip().rpartition(":")
    statistic = STATISTICS.get(name.strip() if sep else "median")
    if statistic is None:
        raise InputError(f"--threshold: unknown statistic {name!r} in {text!r} (use median, "
                         "min or mean, e.g. median:5%)")  # fmt: skip
    value, percent = fraction(amount)
    if not 0 <= value <= 10 or (value >= 1 and not percent):  # NaN fails too
        raise InputError(f"--threshold: expected a percentage (5%, median:5%) or a fraction "
                         f"below 1 (0.05), got {text!r}")  # fmt: skip
    return Threshold(statistic, value)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``I/N`` (1 <= I <= N) → (I, N); None when no shard was asked for."""
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise InputError(f"--shard: expected I/N such as 2/8, got {text!r}")
    i, n = int(index), int(count)
    if not 1 <= i <= n:
        raise InputError(f"--shard: I must be between 1 and N, got {text!r}")
    return i, n


def parse_passes(text: str | None) -> tuple[Pass, ...] | None:
    if text is None:
        return None
    choices: dict[str, tuple[Pass, ...]] = {"forward": ("forward",), "backward": ("backward",)}
    choices["all"] = PASSES
    if text not in choices:
        raise InputError(f"--pass: expected forward, backward or all, got {text!r}")
    return choices[text]


def parse_dtype(text: str | None) -> str | None:
    if text is not None and text not in DTYPES:
        raise InputError(f"--dtype: expected one of {', '.join(DTYPES)}, got {text!r}")
    return text


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "k": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mib": 2**20,
    "g": 2**30,
    "gib": 2**30,
    "t": 2**40,
    "tib": 2**40,
}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")


def parse_max_memory(text: str) -> MemoryLimit:
    """``8GB`` (10^9), ``512MiB`` (2^20; ``512M`` too), ``75%`` (of the memory available when
    the run starts: RAM, or free GPU memory for CUDA strategies), or ``none``."""
    raw = text.strip().lower()
    if raw == "none":
        return MemoryLimit("none")
    problem = (
        f"--max-memory: expected a size such as 8GB or 512MiB, a share such as 75%, "
        f"or none; got {text!r}"
    )
    if raw.endswith("%"):
        share, _ = fraction(raw)
        if math.isnan(share):
            raise InputError(problem)
        if not 0 < share <= 1:
            raise InputError(
                f"--max-memory: a share must be above 0% and at most 100%, got {text!r}"
            )
        return MemoryLimit("share", share)
    found = _SIZE.fullmatch(raw)
    if found is None or found.group(2) not in _UNITS:
        raise InputError(problem)
    size = float(found.group(1)) * _UNITS[found.group(2)]
    if size < 1:
        raise InputError(f"--max-memory: must be at least one byte, got {text!r}")
    return MemoryLimit("bytes", size)


def with_memory_limits(
    options: RunOptions, text: str, strategies: Iterable[Strategy]
) -> RunOptions:
    """``options`` with the host and GPU limits ``--max-memory`` sets for these strategies;
    free GPU memory is asked for only when a CUDA strategy is among them."""
    host, gpu = footprint.resolve_limits(parse_max_memory(text), {s.device for s in strategies})
    return replace(options, max_memory_bytes=host, max_gpu_memory_bytes=gpu)


def _has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _reasons(strategies: Sequence[Strategy]) -> str:
    """Why each strategy cannot run, each reason once with the strategies it holds for."""
    by_reason: dict[str, list[str]] = {}
    for s in strategies:
        by_reason.setdefault(str(s.unavailable_reason()), []).append(s.name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())


def select_strategies(
    globs: Sequence[str], baseline: str | None, note: Note | None = None
) -> list[Strategy]:
    """The strategies ``--impl`` names (default: every one available here), plus the baseline.

    A glob that matches nothing, or an exact name that cannot run here, is bad input. A
    wildcard keeps what can run and notes what it skipped, so ``--impl '*/native'`` works
    on a machine without a GPU.
    """
    everything = registry.strategies()
    if not globs:
        chosen = [s for s in everything if s.unavailable_reason() is None]
    else:
        chosen = []
        for pattern in globs:
            matched = registry.select([pattern])
            if not matched:
                raise InputError(
                    f"--impl {pattern!r} matches no strategy; `deconvbench list` shows them all"
                )
            usable = [s for s in matched if s.unavailable_reason() is None]
            if not usable:
                raise Unavailable(
                    f"--impl {pattern!r}: nothing it matches can run here ({_reasons(matched)})"
                )
            if note is not None and len(usable) < len(matched) and _has_wildcard(pattern):
                skipped = ", ".join(s.name for s in matched if s not in usable)
                note(f"--impl {pattern!r}: skipping unavailable {skipped}")
            chosen += [s for s in usable if s not in chosen]
    if baseline is not None:
        base = registry.get(baseline)  # Unavailable naming close matches when unknown
        reason = base.unavailable_reason()
        if reason is not None:
            raise Unavailable(f"--baseline-impl {baseline}: {reason}")
        if base not in chosen:
            chosen.append(base)  # a speedup needs its baseline measured in the same run
    if not chosen:
        raise Unavailable("no strategy can run here; `deconvbench list` says why")
    return sorted(chosen, key=lambda s: s.name)


def default_output(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"deconvbench-{stamp}.csv"
