"""The memory guard: estimates against measured peaks, limits, skipped rows, refused sizes.

Estimates vs measurements. For every numpy, numba and torch-cpu strategy, each pass, on
four problems (2-D, stride 3 with dilation, output_padding and groups, 1-D with bias, 3-D),
the peak the harness measures (``harness.memory.peak_memory``: the larger of tracemalloc
and the resident-set high-water growth) over *preparation and one call together* (what
``workspace_bytes`` covers: torch's device copies and retained graphs, numba's scratch are
made in preparation) is compared with the estimate. Bounds, from the data (float32, and
float64 for torch; 2 cores):

* ``estimate >= measured / 1.1 - 3 MiB``: numpy and numba estimates are exact to a few
  percent against tracemalloc alone, but the resident-set reading adds pages the runtime
  touches again after ``malloc_trim`` (BLAS and thread-pool buffers, per-thread arenas):
  up to 2.5 MB in this test process whatever the problem, and a few MB more between
  repeats with torch. Hence the median of three readings and the 10% + 3 MiB slack.
* ``estimate <= 3 * measured + 4 MiB``: est/measured ran 0.93-1.72 for numpy and numba,
  1.1-3.0 for torch (oneDNN's allowance is generous where it needs little; float64's
  column buffers are counted in full).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from deconvbench import cli, registry
from deconvbench.backends import Array, Prepared, Strategy, numpy_fetch
from deconvbench.cases.case import Case
from deconvbench.cli import run as cli_run
from deconvbench.cli.app import exit_code
from deconvbench.cli.options import parse_max_memory
from deconvbench.errors import InputError
from deconvbench.harness.inputs import Inputs, make_inputs
from deconvbench.harness.memory import peak_memory
from deconvbench.harness.verify import prepare
from deconvbench.problem import PASSES, Pass, Problem
from deconvbench.results.reader import read_results
from deconvbench.run import footprint
from deconvbench.run.footprint import MemoryLimit

MiB = 2**20

PROBLEMS = {
    "2d": Problem.create(
        batch=8, in_channels=64, out_channels=64, input=(16, 16), kernel=4, stride=2, padding=1
    ),
    "2d-s3-d2-g2": Problem.create(
        batch=4,
        in_channels=32,
        out_channels=48,
        input=(12, 10),
        kernel=3,
        stride=3,
        padding=2,
        dilation=2,
        output_padding=1,
        groups=2,
    ),
    "1d-bias": Problem.create(
        batch=8,
        in_channels=64,
        out_channels=32,
        input=400,
        kernel=5,
        stride=2,
        padding=1,
        bias=True,
    ),
    "3d-bias": Problem.create(
        batch=2,
        in_channels=16,
        out_channels=16,
        input=(8, 8, 8),
        kernel=3,
        stride=2,
        padding=1,
        bias=True,
    ),
}


def _usable(*backends: str) -> list[str]:
    return sorted(
        s.name
        for s in registry.strategies()
        if s.backend in backends and s.unavailable_reason() is None and s.algorithm != "compiled"
    )


# (strategy, problem, dtype, pass, whether preparation is inside the reading)
Measured = tuple[str, str, str, Pass, bool]
MEASURED: list[Measured] = [
    *((s, n, "float32", p, True) for s in _usable("numpy", "numba", "torch-cpu")
      for n in sorted(PROBLEMS) for p in PASSES),
    # off oneDNN, torch's own kernels unfold im2col columns (many times the operands)
    *((f"torch-cpu/{a}", n, "float64", p, True)
      for a in ("native", "zero-insert", "gemm-col2im", "subpixel")
      for n in ("2d-s3-d2-g2", "3d-bias") for p in PASSES),
    # torch.compile's preparation compiles (memory unrelated to the problem): its call only
    *(("torch-cpu/compiled", "2d", "float32", p, False) for p in PASSES
    ),
]  # fmt: skip


def _key(m: Measured) -> str:
    return "|".join(str(v) for v in m)


def measure_all() -> dict[str, float | str]:
    """Every reading of :data:`MEASURED`, in bytes (or why it could not be taken).

    Each is the median of three readings after a warm-up run (JIT compiles, pools fill).
    Run in a process of its own (see :func:`peaks`).
    """
    found: dict[str, float | str] = {}
    for m in MEASURED:
        name, problem_name, dtype, pass_, with_prepare = m
        strategy = registry.get(name)
        problem = replace(PROBLEMS[problem_name], dtype=dtype)
        why = strategy.unavailable_reason() or strategy.unsupported_reason(problem, pass_)
        if why is not None:
            found[_key(m)] = why
            continue
        inputs = make_inputs(problem, 0)

        def both(
            s: Strategy = strategy, p: Problem = problem, ps: Pass = pass_, i: Inputs = inputs
        ) -> object:
            ready = prepare(s, p, ps, i)
            return ready, ready.call()

        both()
        call = both if with_prepare else prepare(strategy, problem, pass_, inputs).call
        readings = [peak_memory(call, lambda: None, "cpu").mb for _ in range(3)]
        found[_key(m)] = statistics.median(r or 0.0 for r in readings) * 1e6
    return found


@pytest.fixture(scope="module")
def peaks() -> dict[str, float | str]:
    """The readings, taken in a fresh process whose glibc returns every block of 128 KiB or
    more to the system when it is freed (``MALLOC_MMAP_THRESHOLD_``).

    By default glibc raises that threshold as a process frees large blocks, and then keeps
    freed blocks in its heap: the resident set then reflects the process's history (the
    same call read 19 MB or 100 MB), not what the call holds at once, which is what an
    estimate can be checked against.
    """
    here = Path(__file__).parent
    code = (
        f"import json, sys; sys.path.insert(0, {str(here)!r}); "
        "import test_footprint as t; print(json.dumps(t.measure_all()))"
    )
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("m", MEASURED, ids=_key)
def test_estimate_covers_the_measured_peak(m: Measured, peaks: dict[str, float | str]) -> None:
    name, problem_name, dtype, pass_, with_prepare = m
    measured = peaks[_key(m)]
    if isinstance(measured, str):
        pytest.skip(measured)
    strategy = registry.get(name)
    problem = replace(PROBLEMS[problem_name], dtype=dtype)
    estimate = strategy.workspace_bytes(problem, pass_)
    facts = f"{name} {pass_} {problem}: estimate {estimate / 1e6:.2f} MB, "
    facts += f"measured {measured / 1e6:.2f} MB"
    assert estimate >= measured / 1.1 - 3 * MiB, facts
    if with_prepare:  # a call alone leaves out the copies preparation made
        assert estimate <= 3 * measured + 4 * MiB, facts


# --- the footprint of a task ----------------------------------------------------------------


class Plain(Strategy):
    """A plugin that says nothing about its memory: it gets the generic estimate."""

    backend = "plugin"
    algorithm = "plain"

    def prepare_forward(
        self, problem: Problem, x: Array, weight: Array, bias: Array | None
    ) -> Prepared:
        return Prepared(lambda: np.zeros(problem.y_shape, x.dtype), numpy_fetch)

    def prepare_backward(
        self, problem: Problem, grad_output: Array, x: Array, weight: Array
    ) -> Prepared:
        return Prepared(lambda: (x.copy(), weight.copy(), None), numpy_fetch)


class OnGpu(Plain):
    algorithm = "gpu"

    @property
    def device(self) -> str:
        return "cuda"


SMALL = PROBLEMS["2d"]


def test_generic_estimate_is_the_results_and_one_temporary() -> None:
    y = 8 * 64 * 32 * 32
    assert Plain().workspace_bytes(SMALL, "forward") == 2 * y * 4
    x, w = 8 * 64 * 16 * 16, 64 * 64 * 4 * 4
    assert Plain().workspace_bytes(SMALL, "backward") == 2 * (x + w) * 4


def test_footprint_adds_the_harness_and_the_reference() -> None:
    fp = footprint.estimate(Plain(), SMALL, "forward", ("forward", "backward"))
    x, w, y = 8 * 64 * 16 * 16, 64 * 64 * 4 * 4, 8 * 64 * 32 * 32
    assert fp.harness == 2 * (x + w + y) * 4  # shared inputs and one private copy
    assert fp.reference >= 8 * (y + x + w)  # both passes' float64 results stay cached
    assert fp.host == fp.harness + fp.reference + fp.workspace and fp.gpu == 0
    alone = footprint.estimate(Plain(), SMALL, "forward", ("forward",), verifying=False)
    assert alone.reference == 0 and alone.host < fp.host


def test_a_cuda_strategy_is_held_to_the_gpu_limit() -> None:
    fp = footprint.estimate(OnGpu(), SMALL, "forward")
    assert fp.gpu == fp.workspace and fp.host == fp.harness + fp.reference + fp.results
    message = footprint.over_limit(fp, None, 1000)
    assert message is not None and "GPU memory" in message and "--max-memory" in message
    assert footprint.over_limit(fp, None, fp.gpu) is None


def test_over_limit_message_names_estimate_parts_and_limit() -> None:
    fp = footprint.estimate(registry.get("numpy/zero-insert"), SMALL, "forward")
    message = footprint.over_limit(fp, 2**20, None)
    assert message is not None
    assert message.startswith(f"needs about {footprint.format_bytes(fp.host)}")
    assert "limit 1.0 MiB (--max-memory)" in message and "strategy" in message
    assert footprint.over_limit(fp, fp.host, None) is None


@pytest.mark.parametrize(
    ("n", "text"),
    [(512, "512 B"), (1536, "1.5 KiB"), (3.2 * 2**30, "3.2 GiB"), (20 * 2**20, "20 MiB")],
)
def test_format_bytes(n: float, text: str) -> None:
    assert footprint.format_bytes(n) == text


HUGE = "batch=100000,in_channels=4096,out_channels=4096,input=64x64,kernel=4,stride=2"


def test_problems_and_estimates_never_allocate() -> None:
    """A problem of petabytes is only arithmetic: building it and estimating every strategy."""
    import tracemalloc

    tracemalloc.start()
    try:
        problem = Problem.create(
            batch=100_000, in_channels=4096, out_channels=4096, input=(64, 64), kernel=4, stride=2
        )
        for strategy in registry.strategies():
            for pass_ in PASSES:
                assert footprint.estimate(strategy, problem, pass_).host > 2**40
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("8GB", MemoryLimit("bytes", 8e9)),
        ("512MiB", MemoryLimit("bytes", 512 * 2**20)),
        ("512m", MemoryLimit("bytes", 512 * 2**20)),
        ("1.5 GiB", MemoryLimit("bytes", 1.5 * 2**30)),
        ("4096", MemoryLimit("bytes", 4096)),
        ("75%", MemoryLimit("share", 0.75)),
        ("100%", MemoryLimit("share", 1.0)),
        ("none", MemoryLimit("none")),
        ("NONE", MemoryLimit("none")),
    ],
)
def test_max_memory_parses(text: str, limit: MemoryLimit) -> None:
    assert parse_max_memory(text) == limit


@pytest.mark.parametrize(
    "text", ["", "abc", "8XB", "-5GB", "0", "0%", "101%", "%", "nan%", "1e9", "GB", "8 G B"]
)
def test_bad_max_memory_is_an_input_error_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--max-memory") as raised:
        parse_max_memory(text)
    assert repr(text) in str(raised.value)


def test_limits_resolve_against_the_device_and_gpu_is_asked_only_for_cuda() -> None:
    asked: list[str] = []

    def gpu() -> int:
        asked.append("gpu")
        return 10_000

    share = MemoryLimit("share", 0.5)
    assert footprint.resolve_limits(share, {"cpu"}, lambda: 1000, gpu) == (500, None)
    assert asked == []
    assert footprint.resolve_limits(share, {"cpu", "cuda"}, lambda: 1000, gpu) == (500, 5000)
    assert asked == ["gpu"]
    fixed = MemoryLimit("bytes", 123)
    assert footprint.resolve_limits(fixed, {"cuda"}, lambda: 1, lambda: 1) == (123, 123)
    assert footprint.resolve_limits(MemoryLimit("none"), {"cuda"}, gpu, gpu) == (None, None)


def test_the_default_limit_is_a_share_of_available_memory() -> None:
    host, gpu = footprint.resolve_limits(footprint.DEFAULT_LIMIT, {"cpu"})
    assert host is not None and gpu is None
    assert 0 < host <= footprint.DEFAULT_SHARE * footprint.total_ram()


def test_refuse_impossible_names_the_case_and_pass() -> None:
    problem = Problem.create(batch=2, in_channels=4, out_channels=4, input=8, kernel=3)
    case = Case("mine", "small", problem)
    footprint.refuse_impossible([case], None, total=problem.bytes_moved("backward"))
    with pytest.raises(InputError, match="suite 'mine' case 'small': its backward"):
        footprint.refuse_impossible([case], None, total=problem.bytes_moved("forward"))
    footprint.refuse_impossible([case], ("forward",), total=problem.bytes_moved("forward"))


# --- through the command line ----------------------------------------------------------------

CASE = "batch=4,in_channels=64,out_channels=32,input=16x16,kernel=4,stride=2,padding=1"
FAST = ("--budget", "0.02", "--min-samples", "3")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _no_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli_run, "calibrate_peaks_with_reasons", lambda d, t, n: ({("cpu", "float32"): 10.0}, {})
    )
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


def test_run_over_the_limit_writes_skipped_rows_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    code, _, stderr = invoke(
        "run", "--case", CASE, "--impl", "numpy/*", "--max-memory", "1MB", "-o", str(out), *FAST
    )
    rows = read_results(out).to_dict("records")
    assert len(rows) == 2 * len(registry.select(["numpy/*"]))  # both passes of each
    for row in rows:
        assert row["status"] == "skipped", row
        assert str(row["message"]).startswith("needs about"), row
        assert str(row["message"]).endswith("limit 977 KiB (--max-memory)"), row
        assert math.isnan(row["median_ms"]) and math.isnan(row["peak_mem_mb"])  # nothing ran
    assert exit_code(rows) == 0  # skips are not failures, in the CLI's rule too
    assert code == 0, stderr


def test_verify_over_the_limit_skips_too() -> None:
    code, stdout, stderr = invoke(
        "verify", "--case", CASE, "--impl", "numpy/direct", "--max-memory", "1KiB"
    )
    assert code == 0, stderr
    assert "skipped" in stdout + stderr


def test_run_with_room_is_not_skipped(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    code, _, stderr = invoke(
        "run", "--case", CASE, "--impl", "numpy/direct", "--max-memory", "none",
        *FAST, "-o", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert set(read_results(out)["status"]) == {"ok"}


def assert_one_line(code: int, stderr: str, *words: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deconvbench: error: "), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("command", ["run", "verify"])
def test_a_bad_max_memory_exits_2(command: str, tmp_path: Path) -> None:
    out = ["-o", str(tmp_path / "r.csv")] if command == "run" else []
    code, _, stderr = invoke(command, "--case", CASE, "--max-memory", "lots", *out)
    assert_one_line(code, stderr, "--max-memory", "'lots'")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["run", "verify"])
def test_a_case_larger_than_the_machine_exits_2_before_anything(
    command: str, tmp_path: Path
) -> None:
    out = tmp_path / "huge.csv"
    extra = ["-o", str(out)] if command == "run" else []
    code, _, stderr = invoke(command, "--case", HUGE, "--impl", "numpy/direct", *extra)
    assert_one_line(code, stderr, f"--case {HUGE}", "TiB", "memory")
    assert not list(tmp_path.iterdir())  # no CSV, no sidecar


def test_a_suite_case_larger_than_the_machine_is_named_by_suite_and_case(tmp_path: Path) -> None:
    suite = tmp_path / "big.toml"
    suite.write_text(
        'name = "big"\ndescription = "too big"\n[[case]]\nname = "whale"\nbatch = 65536\n'
        "in_channels = 4096\nout_channels = 4096\ninput = [32, 32]\nkernel = 4\nstride = 2\n"
    )
    code, _, stderr = invoke("verify", "--suite", str(suite), "--impl", "numpy/direct")
    assert_one_line(code, stderr, "suite 'big' case 'whale'")
