"""Every table at 80, 100 and 200 columns: nothing cut, whatever gives way is named.

Built from fixed rows (never the live strategy registry, which grows): names as long as the
longest shipped ones, notes of every kind, failures and statuses. Each table is checked
against a golden file, and, independently of the goldens, for the property the goldens
stand for: no "…", and every name, number, marker and note of the fixture in the text
(wrapped names are followed down their column), except the columns the line under the table
says it left out.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console, RenderableType
from test_render import check_golden, dcgan_rows
from test_render import row as run_row
from test_render_compare import every_verdict

from deconvbench.analysis import report
from deconvbench.analysis.model_totals import MIX, ModelTotals, Total
from deconvbench.analysis.speedups import speedups
from deconvbench.problem import Problem
from deconvbench.registry import Implementation
from deconvbench.render import PLAIN, RICH, Glyphs, info
from deconvbench.render import _format as fmt
from deconvbench.render import compare as cmp_out
from deconvbench.render import plan as plan_out
from deconvbench.render import report as report_out
from deconvbench.render import table as tables
from deconvbench.render.fit import FitTable, wrap
from deconvbench.render.model_table import model_total_table
from deconvbench.results.plan_file import Plan, PlanEntry
from deconvbench.results.reader import read_results

from helpers import frame, noise
from helpers import row as file_row

WIDTHS = (80, 100, 200)
LONG = "torch-cpu/native-channels-last"
UNSTABLE = (
    "unstable: the middle half of the samples spans 15% of the median; rounds disagree: "
    "medians 5.9-6.3 ms (7% apart; the machine drifted)"
)
CLI_CASE = "batch=2,in_channels=8,out_channels=8,input=8x8,kernel=4,stride=2,padding=1"


def render(renderable: RenderableType, glyphs: Glyphs, width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None,
                      force_terminal=False, legacy_windows=False)  # fmt: skip
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def appears(text: str, wanted: str) -> bool:
    """``wanted`` in ``text``: on one line, or wrapped down a column (each further piece
    starting in the same column on the next line) or onto the next lines' indent."""
    if wanted in text:
        return True
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for start in range(len(line)):
            if _down(lines, i, start, wanted):
                return True
    return False


def _down(lines: list[str], i: int, start: int, rest: str) -> bool:
    """``rest`` from line ``i``, column ``start`` on, its further pieces on the next lines,
    in the same column or at the line's indent."""
    size = len(_common(lines[i][start:], rest))
    if size == 0:
        return False
    rest = rest[size:].lstrip(" ")
    if not rest:
        return True
    if i + 1 >= len(lines):
        return False
    following = lines[i + 1]
    indent = len(following) - len(following.lstrip(" "))
    return any(_down(lines, i + 1, s, rest) for s in {start, indent})


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def left_out(text: str) -> set[str]:
    found = re.search(r"not shown at this width: ([^(]*) \(", " ".join(text.split("\n")))
    return {c.strip() for c in found.group(1).split(",")} if found else set()


def check_complete(table: FitTable, text: str, width: int) -> None:
    """No cell of ``table`` is cut: every cell and note is in ``text``, unless its column is
    named as left out."""
    assert "…" not in text and "..." not in text
    hidden = left_out(text)
    assert hidden == set(table.left_out(table.layout(width)))
    for r in table.rows:
        for column, cell in zip(table.columns, r.cells, strict=True):
            if column.header in hidden:
                continue
            for piece in filter(None, cell.plain.split("\n")):  # a cell's lines, one under another
                assert appears(text, piece), f"{piece!r} ({column.header}) is cut"
        if r.note is not None:
            assert appears(text, r.note.plain), f"note {r.note.plain!r} is cut"


def shown(renderable: RenderableType, glyphs: Glyphs, width: int) -> str:
    return render(renderable, glyphs, width)


# --- fixtures --------------------------------------------------------------------------------


def run_rows() -> list[dict[str, object]]:
    """One case with every kind of row, a long name and long notes."""
    return [
        *dcgan_rows(),
        run_row(LONG, median_ms=6.0, peak_fraction=0.3, message=UNSTABLE, peak_mem_mb=1234.5),
        run_row("numba/tiled", status="timeout", message="no result within 120 s (--timeout)"),
        run_row("numpy/fft", "backward", median_ms=0.006123, peak_fraction=0.0001),
    ]


def implementations() -> list[Implementation]:
    caps: dict[str, object] = {"dims": [1, 2, 3], "dtypes": ["float32", "float64"],
                               "backward": True, "groups": True, "dilation": True}  # fmt: skip
    return [
        Implementation("numpy/direct", "numpy", "direct", "cpu", True, "", caps,
                       "scatter-add by kernel tap, one GEMM per tap over batch and space"),
        Implementation("torch-cuda/native-cudnn-benchmark", "torch-cuda", "native-cudnn-benchmark",
                       "cuda", False, "no CUDA device: torch.cuda.is_available() is False",
                       caps, "cuDNN with benchmark mode"),
        Implementation("jax/native", "jax", "native", "cpu", False,
                       "jax is not installed: pip install 'deconvbench[jax]'", {}, ""),
        Implementation("numpy/subpixel-fused", "numpy", "subpixel-fused", "cpu", True, "",
                       {**caps, "dilation": False},
                       "ESPCN sub-pixel: one correlation with s^d·Cout channels (phase "
                       "sub-kernels zero-padded to one size) + pixel shuffle"),
    ]  # fmt: skip


def report_frame(tmp_path: Path) -> tuple[object, object, object]:
    """Four cases, one of them named as ``--case`` names it, so the matrix is wide."""
    rows = []
    for n, case in enumerate(("g1", "g2", "g3", CLI_CASE)):
        for impl, ms in (("torch-cpu/native", 2.0), (LONG, 1.5 + n), ("numpy/gemm-col2im", 3.0)):
            rows.append(file_row(impl, case=case, samples=[ms] * 8, gflops=10.0 / ms,
                                 peak_fraction=0.05 / ms))  # fmt: skip
    rows.append(file_row("numpy/fft", case="g1", samples=[9.0] * 8, message=UNSTABLE))
    results = frame(tmp_path, rows)
    return (report.best_per_case(results), report.speedup_matrix(results),
            report.unstable_rows(results))  # fmt: skip


def speedup_fixture(tmp_path: Path) -> object:
    rng = np.random.default_rng(7)
    rows = [
        file_row("torch-cpu/native", case=CLI_CASE, samples=noise(rng, 10, 0.01, 2.0)),
        file_row(LONG, case=CLI_CASE, samples=noise(rng, 10, 0.01, 1.0)),
        file_row("numpy/direct", case="alone", samples=[1.0] * 5),
    ]
    return speedups(frame(tmp_path, rows), "torch-cpu/native")


def env_facts() -> dict[str, object]:
    """Facts as ``env.collect()`` gives them: a long path, lists, build flags, thread pools
    (one line each), a section that is missing with its reason, an empty one."""
    return {
        "collected_at": "2026-11-30T12:52:13+00:00",
        "deconvbench": {"version": "0.1.0",
                        "git_revision": "8ab17721e893ba698796a1f075959fbab35ca4ad"},
        "numpy": {"blas_library": "/work/main/.venv/lib/python3.11/site-packages/numpy.libs/"
                                  "libscipy_openblas64_-32a4b2a6.so", "blas_threads": 2},
        "cpu": {"isa": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                        "avx512_vnni", "avx512_bf16"], "governor": None, "smt": False},
        "torch": {"build": {"BLAS_INFO": "mkl", "LAPACK_INFO": "mkl", "USE_CUDNN": "OFF",
                            "USE_MKL": "ON", "USE_MKLDNN": "ON", "USE_OPENMP": "ON"}},
        "cuda": {"available": False, "reason": "this torch is a CPU-only build"},
        "threadpools": {"pools": [
            {"user_api": "openmp", "internal_api": "openmp", "num_threads": 2},
            {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31.188.0",
             "num_threads": 2, "threading_layer": "pthreads", "architecture": "SkylakeX"}]},
        "variables": {},
    }  # fmt: skip


def model_totals_fixture() -> ModelTotals:
    """A model's totals: the mix, strategies with the longest names, one without backward."""
    totals = (
        Total("torch-cpu/native", 21.96, 37.51),
        Total(LONG, 20.44, 40.45),
        Total("numpy/subpixel-fused", 36.61, None),
        Total("numba/direct", 728.6, 1502.0),
    )
    choices = {"forward": {"main.0": "numpy/gemm-col2im", "main.3": LONG, "main.12": LONG},
               "backward": {"main.0": "numpy/subpixel", "main.3": "torch-cpu/native",
                            "main.12": LONG}}  # fmt: skip
    return ModelTotals("dcgan-model", "float32", "cpu", 3, 5, totals, Total(MIX, 18.84, 36.22),
                       choices, "torch-cpu/native")  # fmt: skip


def plan_fixture() -> Plan:
    """Entries that replace native (with and without an interval) and that keep it."""
    big = Problem.create(batch=16, in_channels=128, out_channels=64, input=(16, 16), kernel=4,
                         stride=2, padding=1)  # fmt: skip
    small = Problem.create(batch=2, in_channels=3, out_channels=4, input=(5, 6, 7), kernel=3,
                           stride=2, padding=1, output_padding=1, dilation=2,
                           bias=True)  # fmt: skip

    def entry(
        problem: Problem, pass_: str, strategy: str, reason: str, **values: object
    ) -> PlanEntry:
        base: dict[str, object] = dict(
            problem=problem, device="cpu", pass_=pass_, strategy=strategy,
            native="torch-cpu/native", native_ms=5.919, strategy_ms=4.906, speedup=1.207,
            ci_low=1.15, ci_high=1.26, p_value=5.1e-12, contender=strategy, reason=reason,
            source="dcgan.csv: dcgan/g4",
        )  # fmt: skip
        base.update(values)
        return PlanEntry(**base)  # type: ignore[arg-type]

    kept = ("kept torch-cpu/native: torch-cpu/native-channels-last noisy: too dispersed: 95% CI "
            "0.939-1.078 (rounds 3+3, fastest each) reaches past 5.0% on both sides")  # fmt: skip
    entries = (
        entry(big, "forward", LONG,
              "20.7% faster (> 5.0%), p = 5.1e-12 (rounds 3+3, fastest each)"),
        entry(big, "backward", "torch-cpu/native", kept, strategy_ms=10.24, speedup=1.0),
        entry(small, "forward", "numpy/gemm-col2im", "54.2% faster (> 5.0%), p = 5.7e-28",
              native_ms=0.9765, strategy_ms=0.6334, speedup=1.54, ci_low=None, ci_high=None),
        entry(small, "backward", "torch-cuda/native", "torch-cuda/native is the fastest measured",
              native="torch-cuda/native", native_ms=0.01935, speedup=1.0, device="cuda"),
    )  # fmt: skip
    rule = {"threshold": 0.05, "statistic": "median", "alpha": 0.05, "impl": ["torch-*", "numpy/*"]}
    return Plan({"cpu": "AMD EPYC"}, rule, entries)


# --- the tables ----------------------------------------------------------------------------


def _golden(name: str, glyphs: Glyphs, width: int, renderable: RenderableType) -> str:
    text = shown(renderable, glyphs, width)
    suffix = "_plain" if glyphs is PLAIN else ""
    check_golden(f"widths/{name}{suffix}_{width}.txt", text)
    return text


@pytest.mark.parametrize("glyphs", [RICH, PLAIN], ids=["rich", "plain"])
@pytest.mark.parametrize("width", WIDTHS)
def test_run_table(width: int, glyphs: Glyphs) -> None:
    table = tables.case_table(run_rows(), None, glyphs)
    text = _golden("run", glyphs, width, table)
    check_complete(table, text, width)
    assert sum(line.startswith(f" {glyphs.fastest} ") for line in text.splitlines()) == 2
    for r in run_rows():
        assert appears(text, str(r["implementation"]))
        assert appears(text, str(r["message"]))
    for value in ("1.60", "0.006123", "8.0%", "MISMATCH", "ERROR", "TIMEOUT", "unsupported"):
        assert value in text
    if width < 200:
        assert left_out(text), "a narrow table names what it leaves out"
    assert text.isascii() or glyphs is RICH


@pytest.mark.parametrize("width", WIDTHS)
def test_summary_and_verify_tables(width: int) -> None:
    rows = run_rows()
    summary = tables.summary_table(rows)
    check_complete(summary, _golden("summary", RICH, width, summary), width)
    for r in rows:
        for key in ("median_ms", "gflops", "ci_low_ms", "ci_high_ms", "samples"):
            r[key] = None
    verify = tables.verification_table(rows)
    text = _golden("verify", RICH, width, verify)
    check_complete(verify, text, width)
    assert appears(text, "numpy/zero-insert: no 3-D") and "5.0e-01" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_table(width: int, tmp_path: Path) -> None:
    result = every_verdict(tmp_path)
    text = _golden("compare", RICH, width, cmp_out.export(result, "table"))
    assert "…" not in text
    for r in result.rows:
        assert r.verdict in text and appears(text, r.implementation)
        shown_ratio = cmp_out.ratio(r.ratio)
        assert shown_ratio in text
    for table in _fit_tables(cmp_out.export(result, "table")):
        check_complete(table, shown(table, RICH, width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_speedup_table(width: int, tmp_path: Path) -> None:
    renderable = cmp_out.export(speedup_fixture(tmp_path), "table")  # type: ignore[arg-type]
    text = _golden("compare_speedups", RICH, width, renderable)
    assert appears(text, CLI_CASE) and appears(text, LONG) and "…" not in text
    for table in _fit_tables(renderable):
        check_complete(table, shown(table, RICH, width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_report_tables(width: int, tmp_path: Path) -> None:
    best, matrix, unstable = report_frame(tmp_path)
    best_table = report_out.best_table(best)  # type: ignore[arg-type]
    check_complete(best_table, _golden("report_best", RICH, width, best_table), width)
    unstable_table = report_out.unstable_table(unstable)  # type: ignore[arg-type]
    check_complete(unstable_table, _golden("report_unstable", RICH, width, unstable_table), width)
    speedup = report_out.speedup_table(matrix)  # type: ignore[arg-type]
    text = _golden("report_matrix", RICH, width, speedup)
    assert "…" not in text
    for impl in (LONG, "torch-cpu/native", "numpy/gemm-col2im"):
        assert appears(text, impl)
    parts = [p for p in speedup.tables(width) if isinstance(p, FitTable)]
    assert text.count("geomean") == len(parts)  # next to the names in every part
    for column in matrix.columns:  # type: ignore[attr-defined]
        assert appears(text, str(column))
        for value in matrix[column].dropna():  # type: ignore[index]
            assert fmt.speedup(value) in text


@pytest.mark.parametrize("width", WIDTHS)
def test_list_table(width: int) -> None:
    table = info.implementations_table(implementations())
    text = _golden("list", RICH, width, table)
    check_complete(table, text, width)
    lines = text.splitlines()
    # The description is never squeezed into a narrow column beside padded ones.
    assert all(len(line) <= width for line in lines)


@pytest.mark.parametrize("glyphs", [RICH, PLAIN], ids=["rich", "plain"])
@pytest.mark.parametrize("width", WIDTHS)
def test_env_table(width: int, glyphs: Glyphs) -> None:
    table = info.env_table(env_facts(), glyphs)
    text = _golden("env", glyphs, width, table)
    check_complete(table, text, width)
    assert not left_out(text) and all(len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("width", WIDTHS)
def test_model_total_table(width: int) -> None:
    totals = model_totals_fixture()
    table = model_total_table(totals)
    text = _golden("model_total", RICH, width, table)
    check_complete(table, text, width)
    assert appears(text, f"{MIX}, forward: main.0 numpy/gemm-col2im, main.3 {LONG}, main.12 {LONG}")
    assert all(len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_table(width: int) -> None:
    plan = plan_fixture()
    table = plan_out.plan_table(plan)
    text = _golden("plan", RICH, width, table)
    check_complete(table, text, width)
    assert appears(text, "(rule: 5% on the median, alpha 0.05; only torch-*, numpy/*)")
    for e in plan.entries:
        assert appears(text, str(e.problem)) and appears(text, e.reason)
    assert all(len(line) <= width for line in text.splitlines())


def test_empty_columns_give_way_first_and_are_not_named() -> None:
    rows = [r for r in run_rows() if r["implementation"] == "numpy/direct"]
    table = tables.summary_table(rows)  # one strategy: no speedup, no baseline
    text = shown(table, RICH, 80)
    check_complete(table, text, 80)
    assert "speedup" not in text and "baseline" not in text and not left_out(text)
    assert "GF/s" in text or "GFLOP/s" in text
    wide = shown(table, RICH, 200)
    assert "speedup" in wide and "baseline" in wide  # where everything fits, nothing goes


def test_readme_example_is_what_run_prints_at_100_columns() -> None:
    """README.md's example output: the committed dcgan run's g2 table and summary, as ``run``
    prints them at its end into a 100-column pipe (plain glyphs)."""
    root = Path(__file__).resolve().parent.parent
    frame = read_results(root / "results/cpu-epyc-2vcpu/dcgan.csv")
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    g2 = next(g for g in tables.group_by_case(rows) if g[0]["case"] == "g2")
    parts = [tables.case_table(g2, None, PLAIN), tables.summary_table(rows, None, PLAIN)]
    want = "\n\n".join(shown(t, PLAIN, 100).strip("\n") for t in parts)
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = readme[readme.index("## Example output") :]
    block = example[example.index("```text\n") + 8 : example.index("\n```\n")]
    assert block == want, "regenerate README.md's example output from the current tables"


def _fit_tables(renderable: RenderableType) -> Iterable[FitTable]:
    parts = getattr(renderable, "renderables", [renderable])
    return [p for p in parts if isinstance(p, FitTable)]


# --- the pieces ----------------------------------------------------------------------------


def test_wrap_keeps_every_character_and_breaks_after_separators() -> None:
    from rich.text import Text

    lines = [t.plain for t in wrap(Text(LONG), 16)]
    assert lines == ["torch-cpu/", "native-channels-", "last"]
    assert [t.plain for t in wrap(Text("abcdefghij"), 4)] == ["abcd", "efgh", "ij"]
    assert [t.plain for t in wrap(Text("one two\nthree"), 20)] == ["one two", "three"]


def test_appears_follows_a_wrapped_name_down_its_column() -> None:
    text = " x   torch-cpu/          1.0\n     native-channels-\n     last\n"
    assert appears(text, LONG) and not appears(text, "torch-cpu/native-x")


def test_columns_give_way_in_order() -> None:
    table = tables.case_table(run_rows(), None)
    hidden = [table.left_out(table.layout(w)) for w in (200, 100, 80, 60)]
    assert hidden[0] == []
    assert hidden[1] == ["rel err", "mem MB"]
    assert set(hidden[2]) <= {"rel err", "mem MB", "% peak", "GFLOP/s"}
    assert "% peak" in hidden[3] and "median ms" not in hidden[3]
