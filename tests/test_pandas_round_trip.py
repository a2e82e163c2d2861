"""Results files that pandas rewrote (``pd.read_csv(f).to_csv(g, index=False)``) read back as
the originals: the same frame, the same ``compare`` verdicts, and ``merge`` and ``report``
take them. Garbage is still refused with one line naming the column and the line."""

from __future__ import annotations

import csv
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.errors import InputError
from deconvbench.results.fields import integral_list, parse_bool, parse_int
from deconvbench.results.merge import merge
from deconvbench.results.reader import read_results
from deconvbench.results.writer import ResultWriter

from helpers import Row, drifting_pairs, row

SMALL = "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1"
ONE_D = "in_channels=2,out_channels=3,input=6,kernel=4,stride=2"
BIG = "batch=8,in_channels=64,out_channels=64,input=32x32,kernel=4,stride=2,padding=1"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli.app, list(args), catch_exceptions=False, env={"NO_COLOR": "1", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def through_pandas(src: Path, dst: Path, **to_csv: object) -> Path:
    """What a user's filtering script writes."""
    pd.read_csv(src).to_csv(dst, index=False, **to_csv)  # type: ignore[call-overload]
    return dst


def written(path: Path, rows: list[Row]) -> Path:
    with ResultWriter(path, "new") as writer:
        for r in rows:
            writer.write(r)
    return path


def cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def column(path: Path, name: str) -> list[str]:
    header, *rows = cells(path)
    return [r[header.index(name)] for r in rows]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: 2-D and 1-D cases, two rounds, ok rows and rows the memory guard skipped."""
    out = tmp_path_factory.mktemp("run") / "run.csv"
    code, _, err = invoke(
        "run", "--case", SMALL, "--case", ONE_D, "--case", BIG, "--impl", "numpy/direct",
        "--impl", "numpy/subpixel", "--budget", "0.01", "--min-samples", "3", "--threads", "1",
        "--rounds", "2", "--max-memory", "1MB", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    statuses = set(column(out, "status"))
    assert statuses == {"ok", "skipped"}, statuses
    return out


RUN: dict[str, Any] = dict(timestamp="2024-05-01T12:00:00+00:00", host="box", tool_version="0.1.0")
"""What a run fills in every row (the helpers' rows leave it empty)."""


def mixed_rows() -> list[Row]:
    """Rows that make pandas turn columns into floats: one-round rows beside untimed ones
    (``round_samples``, ``rounds``, ``samples``, ``inner_loops``, ``seed`` with gaps), one-sample
    ``samples_ms``, formula-like and quoted text, both booleans, extreme floats."""
    one_round: dict[str, Any] = dict(
        rounds=1, round_samples="5", inner_loops=7, seed=3, stop_reason="budget",
        clock="perf_counter", **RUN,
    )  # fmt: skip
    return [
        row("numpy/direct", samples=[1.5, 1.25, 1.75, 1.5, 2.0], **one_round),
        row("numpy/fft", samples=[0.1 + 0.2], bias=False, **{**one_round, "round_samples": "1"}),
        row("numpy/subpixel", samples=[5e-324, 1e300, 1 / 3], rounds=1, round_samples="3", **RUN),
        row("numpy/zero-insert", status="skipped", message="-needs 9 GB, limit 1 GB", **RUN),
        row("numpy/gemm-col2im", status="mismatch", message='grad_input: "off", by 1e-2', **RUN),
        row("torch-cpu/native", status="unsupported", threads=None, **RUN),
    ]


def one_d_rows() -> list[Row]:
    """A file of 1-D cases only: pandas reads its tuple columns (``25``) as integers."""
    one_d: dict[str, Any] = dict(
        input=(25,), kernel=(4,), stride=(2,), padding=(1,), output_padding=(0,), dilation=(1,),
        output=(50,), **RUN,
    )  # fmt: skip
    impls = ("numpy/direct", "numpy/fft")
    return [row(impl, case="1d-k4-s2", samples=[2.5], **one_d) for impl in impls]


@pytest.fixture
def files(tmp_path: Path, run_file: Path) -> dict[str, Path]:
    """One file of every kind the tool writes, ``merge``'s output included."""
    shards = [written(tmp_path / "a.csv", mixed_rows()), written(tmp_path / "b.csv", one_d_rows())]
    code, _, err = invoke("merge", *map(str, shards), "-o", str(tmp_path / "merged.csv"))
    assert code == 0, err
    return {"run": run_file, "mixed": shards[0], "one-d": shards[1],
            "merged": tmp_path / "merged.csv"}  # fmt: skip


KINDS = ["run", "mixed", "one-d", "merged"]


@pytest.mark.parametrize("na_rep", ["", "NaN"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_pandas_rewrite_reads_back_as_the_same_frame(
    files: dict[str, Path], tmp_path: Path, kind: str, na_rep: str
) -> None:
    original = files[kind]
    copy = through_pandas(original, tmp_path / "copy.csv", na_rep=na_rep)
    assert copy.read_text() != original.read_text()  # pandas did rewrite something
    assert_frame_equal(read_results(copy), read_results(original), check_exact=True)


def test_what_pandas_changes_is_what_the_reader_undoes(
    files: dict[str, Path], tmp_path: Path
) -> None:
    copy = through_pandas(files["mixed"], tmp_path / "copy.csv")
    assert column(copy, "bias") == ["True", "False", "True", "True", "True", "True"]
    assert column(copy, "round_samples")[:3] == ["5.0", "1.0", "3.0"]
    assert column(copy, "samples")[0] == "5.0" and column(copy, "threads")[-1] == ""
    frame = read_results(copy)
    assert list(frame["round_samples"]) == ["5", "1", "3", "", "", ""]
    assert frame["samples"].dtype == "Int64" and frame["samples"].iloc[0] == 5
    assert frame["message"].iloc[3] == "-needs 9 GB, limit 1 GB"  # the ' prefix survives pandas


def test_floats_survive_pandas_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = [float(v) for v in rng.lognormal(0.0, 6.0, 300)]
    values += [5e-324, 2.2250738585072014e-308, 1e16, 1e17, 0.1 + 0.2, 1 / 3, 1.7e308]
    rows = [row(f"numpy/s{i}", median_ms=v, mean_ms=-v) for i, v in enumerate(values)]
    original = written(tmp_path / "r.csv", rows)
    copy = through_pandas(original, tmp_path / "copy.csv")
    assert column(copy, "median_ms") == column(original, "median_ms")  # the very same text
    back = read_results(copy)["median_ms"].to_numpy()
    bits = [struct.unpack("<q", struct.pack("<d", v))[0] for v in values]
    assert back.view(np.int64).tolist() == bits


def test_compare_gives_the_same_verdicts_on_rewritten_files(tmp_path: Path) -> None:
    base_rows, cand_rows = drifting_pairs(seed=3, rows=6, scale=1.3)
    base = written(tmp_path / "base.csv", base_rows)
    cand = written(tmp_path / "cand.csv", cand_rows)
    base_copy = through_pandas(base, tmp_path / "base-pd.csv")
    cand_copy = through_pandas(cand, tmp_path / "cand-pd.csv")

    def verdicts(a: Path, b: Path) -> str:
        code, out, err = invoke("compare", str(a), str(b), "--format", "json", "--no-fail")
        assert code == 0, err
        return out

    assert verdicts(base, cand) == verdicts(base_copy, cand_copy) == verdicts(base, cand_copy)
    same = verdicts(base, base)
    assert '"regressed"' in verdicts(base, cand) and '"unchanged"' in same
    assert verdicts(base, base_copy) == same == verdicts(base_copy, base)


def test_compare_of_a_real_run_and_its_rewrite(run_file: Path, tmp_path: Path) -> None:
    copy = through_pandas(run_file, tmp_path / "copy.csv")
    outs = [invoke("compare", str(a), str(b), "--format", "json", "--no-fail")
            for a, b in ((run_file, run_file), (run_file, copy), (copy, run_file))]  # fmt: skip
    assert all(code == 0 for code, _, _ in outs) and len({out for _, out, _ in outs}) == 1


def test_report_reads_a_rewritten_file(run_file: Path, tmp_path: Path) -> None:
    copy = through_pandas(run_file, tmp_path / "copy.csv")
    (code, original, err), (copy_code, rewritten, _) = (
        invoke("report", str(run_file)), invoke("report", str(copy))
    )
    assert code == copy_code == 0, err
    assert rewritten.replace(str(copy), str(run_file)) == original


def test_merge_writes_the_tools_own_text(tmp_path: Path) -> None:
    """Merging the tool's files rewrites nothing; merging pandas' copies gives the same file."""
    a = written(tmp_path / "a.csv", mixed_rows())
    b = written(tmp_path / "b.csv", one_d_rows())
    a_copy = through_pandas(a, tmp_path / "a-pd.csv")
    b_copy = through_pandas(b, tmp_path / "b-pd.csv")
    outputs = []
    for i, pair in enumerate([(a, b), (a_copy, b), (a, b_copy), (a_copy, b_copy)]):
        out = tmp_path / f"merged{i}.csv"
        code, _, err = invoke("merge", *map(str, pair), "-o", str(out))
        assert code == 0, err
        outputs.append(out.read_bytes())
    assert len(set(outputs)) == 1
    assert outputs[0] == a.read_bytes() + b.read_bytes().split(b"\n", 1)[1]


def test_merge_of_a_shard_and_its_rewrite_is_a_duplicate(tmp_path: Path) -> None:
    a = written(tmp_path / "a.csv", mixed_rows())
    with pytest.raises(InputError, match=r"line 2: duplicated row smoke/2d-k4-s2/numpy/direct"):
        merge([a, through_pandas(a, tmp_path / "a-pd.csv")])
    changed = mixed_rows()
    changed[0]["median_ms"] = 1.6
    other = written(tmp_path / "changed.csv", changed)
    with pytest.raises(InputError, match=r"line 2: conflicting row"):
        merge([through_pandas(a, tmp_path / "a-pd2.csv"), other])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bias", "maybe", "column bias must be true or false, got 'maybe'"),
        ("bias", "", "column bias must be true or false, got ''"),
        ("threads", "3.5", "column threads is not an integer: '3.5'"),
        ("samples", "inf", "column samples is not an integer: 'inf'"),
        ("flops", "many", "column flops is not an integer: 'many'"),
        ("median_ms", "fast", "column median_ms is not a number: 'fast'"),
    ],
)
def test_garbage_is_still_refused_in_one_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = written(tmp_path / "r.csv", mixed_rows())
    header, *rows = cells(path)
    rows[2][header.index(name)] = text
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    for command in (["compare", str(path), str(path)], ["report", str(path)]):
        code, _, err = invoke(*command)
        assert code == 2 and err.strip() == f"deconvbench: error: {path}: line 4: {message}"


def test_the_field_parsers() -> None:
    assert [parse_int(t) for t in ("3", "3.0", "1e3", "-0.0")] == [3, 3, 1000, 0]
    for bad in ("3.5", "inf", "nan", "x", ""):
        with pytest.raises(ValueError):
            parse_int(bad)
    assert [parse_bool(t) for t in ("true", "True", "FALSE", "yes", "")] == [
        True, True, False, None, None,
    ]  # fmt: skip
    assert [integral_list(t) for t in ("5.0", "3;3;3", "2.5", "x;4.0")] == ["5", "3;3;3", "2.5",
                                                                             "x;4"]
