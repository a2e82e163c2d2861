"""The compare exporters: golden markdown, csv and json records, the rich table, the interface."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from deconvbench.analysis import compare as cmp
from deconvbench.analysis.speedups import speedups
from deconvbench.cli.options import parse_threshold
from deconvbench.errors import InputError
from deconvbench.render import PLAIN, RICH, Glyphs
from deconvbench.render import compare as out

from helpers import frame, noise, row

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DECONVBENCH_UPDATE_GOLDEN") == "1"
"""Set to 1 to rewrite the golden files after a deliberate change of the output."""
FIVE = parse_threshold("5%")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"golden file {path} was missing; written now, check it and rerun")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}"


def every_verdict(tmp_path: Path) -> cmp.Comparison:
    """One row of each verdict (two noisy ones: too few samples, too dispersed)."""
    rng = np.random.default_rng(2024)
    steady = noise(rng, 40, 0.01, 0.25)
    base = [
        row("numpy/direct", samples=steady),
        row("numpy/direct", pass_="backward", samples=noise(rng, 40, 0.01, 0.5)),
        row("torch-cpu/native", samples=noise(rng, 40, 0.01, 0.1)),
        row("torch-cpu/native", pass_="backward", samples=noise(rng, 3, 0.01, 0.3)),
        row("numba/tiled", samples=noise(rng, 8, 0.5, 1.0)),
        row("numba/direct", samples=noise(rng, 30, 0.01, 2.0)),
        row("numpy/fft", samples=noise(rng, 30, 0.01, 9.0)),
        row("numpy/subpixel", status="unsupported", message="subpixel: needs stride | kernel"),
    ]
    cand = [
        row("numpy/direct", samples=noise(rng, 40, 0.01, 0.25)),
        row("numpy/direct", pass_="backward", samples=noise(rng, 40, 0.01, 0.65)),
        row("torch-cpu/native", samples=noise(rng, 40, 0.01, 0.08)),
        row("torch-cpu/native", pass_="backward", samples=noise(rng, 30, 0.01, 0.3)),
        row("numba/tiled", samples=noise(rng, 8, 0.5, 1.0)),
        row("numba/direct", status="mismatch", message="output | max rel err 3.1e-02 > 1e-05"),
        row("numpy/subpixel", status="unsupported", message="subpixel: needs stride | kernel"),
        row("numpy/zero-insert", samples=noise(rng, 30, 0.01, 1.5)),
    ]
    return cmp.compare_frames(
        frame(tmp_path, base, "base.csv"), frame(tmp_path, cand, "head.csv"), FIVE
    )


def render(renderable: object, glyphs: Glyphs = RICH, width: int = 160) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, no_color=True, color_system=None, force_terminal=False
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def test_the_fixture_has_every_verdict(tmp_path: Path) -> None:
    result = every_verdict(tmp_path)
    assert {r.verdict for r in result.rows} == set(cmp.VERDICTS)
    assert result.counts["noisy"] == 2


def test_markdown_golden(tmp_path: Path) -> None:
    check_golden("compare.md", out.export(every_verdict(tmp_path), "markdown"))  # type: ignore[arg-type]


def test_markdown_when_the_gate_passes_golden(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    samples = [noise(rng, 20, 0.01, 1.0), noise(rng, 20, 0.01, 3.0)]
    base = [row("numpy/direct", samples=samples[0]), row("numpy/fft", samples=samples[1])]
    cand = [row("numpy/direct", samples=samples[0]), row("numpy/fft", samples=samples[1])]
    result = cmp.compare_frames(
        frame(tmp_path, base, "b.csv"), frame(tmp_path, cand, "c.csv"), FIVE
    )
    check_golden("compare_pass.md", out.export(result, "markdown"))  # type: ignore[arg-type]


def test_speedups_markdown_golden(tmp_path: Path) -> None:
    rows = [
        row("torch-cpu/native", samples=[2.0] * 5),
        row("numpy/direct", samples=[4.0] * 5),
        row("numpy/subpixel", samples=[1.0] * 5),
        row("torch-cpu/native", pass_="backward", samples=[6.0] * 5),
        row("numpy/direct", pass_="backward", samples=[3.0] * 5),
        row("numpy/direct", case="no-native", samples=[1.0] * 5),
    ]
    table = speedups(frame(tmp_path, rows), "torch-cpu/native")
    check_golden("compare_speedups.md", out.export(table, "markdown"))  # type: ignore[arg-type]


def test_markdown_puts_the_decision_first_and_folds_unchanged_rows(tmp_path: Path) -> None:
    text = out.comparison_markdown(every_verdict(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "### deconvbench compare: 1 failed, 1 regressed (gate fails)"
    flagged = [line for line in lines if line.startswith("| ") and "verdict" not in line]
    assert [line.split(" | ")[0][2:] for line in flagged][:7] == [
        "failed",
        "regressed",
        "noisy",
        "noisy",
        "missing",
        "new",
        "improved",
    ]
    assert text.index("<summary>2 unchanged rows</summary>") > text.index("| improved |")
    assert "mismatch: output \\| max rel err" in text  # a pipe cannot break the table


def test_markdown_caps_long_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(out, "MARKDOWN_MAX_ROWS", 2)
    text = out.comparison_markdown(every_verdict(tmp_path))
    assert "… and 5 more (see `--format csv`)." in text


def test_csv_has_one_record_per_row_with_the_contract_fields(tmp_path: Path) -> None:
    result = every_verdict(tmp_path)
    records = list(csv.DictReader(io.StringIO(out.comparison_csv(result))))
    assert len(records) == len(result.rows)
    for key in (
        "suite",
        "case",
        "implementation",
        "pass",
        "dtype",
        "kernel",
        "stride",
        "baseline_ms",
        "candidate_ms",
        "ratio",
        "p_value",
        "verdict",
        "reason",
    ):
        assert key in records[0]
    by_impl = {(r["implementation"], r["pass"]): r for r in records}
    regressed = next(r for r in result.rows if r.verdict == "regressed")
    record = by_impl[(regressed.implementation, regressed.pass_)]
    assert float(record["ratio"]) == regressed.ratio  # full precision
    assert record["verdict"] == "regressed"
    missing = next(r for r in records if r["verdict"] == "missing")
    assert missing["candidate_ms"] == "" and missing["ratio"] == ""


def test_csv_of_nothing_still_has_a_header() -> None:
    empty = cmp.Comparison((), FIVE, 0.05, "none", dict.fromkeys(cmp.VERDICTS, 0), None, {})
    header = out.comparison_csv(empty).splitlines()
    assert len(header) == 1 and header[0].startswith("suite,case,implementation")


def test_json_summary_and_records(tmp_path: Path) -> None:
    result = every_verdict(tmp_path)
    data = json.loads(out.comparison_json(result))
    assert data["gate_failed"] is True and data["counts"]["failed"] == 1
    assert data["threshold"] == {"statistic": "median", "fraction": 0.05}
    assert data["alpha"] == 0.05 and data["normalize"] == "none"
    assert set(data["slices"]) == set(cmp.SLICE_AXES)
    assert data["geomean"]["n"] == result.geomean[1]  # type: ignore[index]
    assert [r["verdict"] for r in data["rows"]] == [r.verdict for r in result.rows]
    missing = next(r for r in data["rows"] if r["verdict"] == "missing")
    assert missing["ratio"] is None and missing["p_value"] is None


def test_json_has_no_nan(tmp_path: Path) -> None:
    result = every_verdict(tmp_path)
    odd = cmp.Comparison(
        result.rows,
        result.threshold,
        result.alpha,
        result.normalize,
        result.counts,
        (float("nan"), 0),
        result.slices,
    )
    assert json.loads(out.comparison_json(odd))["geomean"]["ratio"] is None


def test_speedup_csv_and_json(tmp_path: Path) -> None:
    rows = [row("torch-cpu/native", samples=[2.0] * 5), row("numpy/direct", samples=[4.0] * 5)]
    table = speedups(frame(tmp_path, rows), "torch-cpu/native")
    records = list(csv.DictReader(io.StringIO(out.speedup_csv(table))))
    assert [(r["implementation"], float(r["speedup"])) for r in records] == [
        ("torch-cpu/native", 1.0),
        ("numpy/direct", 0.5),
    ]
    data = json.loads(out.speedup_json(table))
    assert data["baseline_impl"] == "torch-cpu/native"
    assert data["geomeans"]["numpy/direct"] == {"speedup": 0.5, "n": 1}


def test_table_is_worst_first_and_notes_the_reasons(tmp_path: Path) -> None:
    text = render(out.export(every_verdict(tmp_path), "table"))
    lines = text.splitlines()
    assert lines[0] == "compare: 1 failed, 1 regressed (gate fails)"
    verdicts = [
        line.split()[0]
        for line in lines
        if line.split()[:1]
        and line.split()[0] in cmp.VERDICTS
        and "smoke/" in line
        and ":" not in line.split()[0]
    ]
    assert verdicts == [
        "failed",
        "regressed",
        "noisy",
        "noisy",
        "missing",
        "new",
        "improved",
        "unchanged",
        "unchanged",
    ]
    assert (
        "failed: smoke/2d-k4-s2 numba/direct forward float32: was ok, now mismatch: output" in text
    )
    assert "noisy: smoke/2d-k4-s2 torch-cpu/native backward float32: too few samples" in text
    assert "geomean ratio by axis" in text and "Mann-Whitney" in text


def test_plain_table_is_ascii(tmp_path: Path) -> None:
    text = render(out.export(every_verdict(tmp_path), "table", PLAIN), PLAIN)
    assert text.isascii(), [c for c in text if not c.isascii()]


def test_speedup_table_renders(tmp_path: Path) -> None:
    rows = [
        row("torch-cpu/native", samples=[2.0] * 5),
        row("numpy/direct", samples=[1.0] * 5),
        row("numpy/direct", case="alone", samples=[1.0] * 5),
    ]
    text = render(out.export(speedups(frame(tmp_path, rows), "torch-cpu/native"), "table"))
    assert "speedup over torch-cpu/native" in text and "2.000×" in text
    assert "no torch-cpu/native result for: smoke/alone forward float32" in text


def test_one_exporter_per_format() -> None:
    assert set(out.EXPORTERS) == set(out.SPEEDUP_EXPORTERS) == set(out.FORMATS)
    assert out.FORMATS == ("table", "markdown", "csv", "json")


def test_an_unknown_format_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--format: expected one of table, markdown, csv, json"):
        out.export(every_verdict(tmp_path), "html")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.000×"),
        (1.0234, "1.023×"),
        (0.0049, "0.005×"),
        (26.558, "26.56×"),
        (1234.6, "1235×"),
        (None, ""),
        (float("inf"), ""),
    ],
)
def test_ratio_text(value: float | None, text: str) -> None:
    assert out.ratio(value) == text


@pytest.mark.parametrize(
    ("p", "text"), [(None, ""), (0.5, "0.5"), (0.0123, "0.012"), (1e-7, "<1e-4"), (1.0, "1")]
)
def test_p_value_text(p: float | None, text: str) -> None:
    assert out.p_value(p) == text


def test_settings_name_the_method_and_the_typical_interval(tmp_path: Path) -> None:
    from helpers import drifting_pairs

    base, cand = drifting_pairs(0, 20)
    result = cmp.compare_frames(frame(tmp_path, base, "b.csv"), frame(tmp_path, cand, "c.csv"),
                                FIVE)  # fmt: skip
    text = out.settings(result)
    assert "fastest round against fastest round" in text and "Mann-Whitney" not in text
    widths = sorted((r.ratio_ci_high / r.ratio_ci_low) ** 0.5 - 1 for r in result.rows)  # type: ignore[operator]
    assert f"typical 95% CI half-width {widths[10]:.1%}" in text
    rng = np.random.default_rng(1)
    plain = row("numpy/other", samples=list(rng.lognormal(0, 0.02, 30)))
    mixed = cmp.compare_frames(frame(tmp_path, [*base, plain], "b2.csv"),
                               frame(tmp_path, [*cand, plain], "c2.csv"), FIVE)  # fmt: skip
    assert "rows with rounds: fastest round" in out.settings(mixed)
    assert "others: two-sided Mann-Whitney U" in out.settings(mixed)
