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
from deconvbench.analysis.speedups import speedups
from deconvbench.registry import Implementation
from deconvbench.render import PLAIN, RICH, Glyphs, info
from deconvbench.render import _format as fmt
from deconvbench.render import compare as cmp_out
from deconvbench.render import report as report_out
from deconvbench.render import table as tables
from deconvbench.render.fit import FitTable, wrap

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
            if column.header not in hidden and cell.plain:
                assert appears(text, cell.plain), f"{cell.plain!r} ({column.header}) is cut"
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
