"""The results CSV: columns, text conventions, writer modes, reader validation, sidecar."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from deconvbench.errors import InputError
from deconvbench.results.fields import parse_samples
from deconvbench.results.reader import read_results
from deconvbench.results.schema import COLUMNS, CONTRACT_COLUMNS, row_key
from deconvbench.results.sidecar import read_sidecar, write_sidecar
from deconvbench.results.writer import ResultWriter

from helpers import Row

CONTRACT = """schema_version, run_id, timestamp, host, tool_version, suite, case, implementation,
backend, algorithm, device, pass, dtype, batch, in_channels, out_channels, groups, input, kernel,
stride, padding, output_padding, dilation, bias, output, status, message, samples, median_ms,
mean_ms, stddev_ms, min_ms, max_ms, q1_ms, q3_ms, ci_low_ms, ci_high_ms, flops, gflops,
peak_fraction, max_abs_err, max_rel_err, peak_mem_mb, threads, samples_ms"""


def make_row(**overrides: object) -> Row:
    row: Row = dict.fromkeys(COLUMNS)
    row.update(
        schema_version=1,
        run_id="r1",
        timestamp="2024-01-01T00:00:00+00:00",
        host="box",
        tool_version="0.1.0",
        suite="dcgan",
        case="g2",
        implementation="numpy/direct",
        backend="numpy",
        algorithm="direct",
        device="cpu",
        dtype="float32",
        batch=64,
        in_channels=512,
        out_channels=256,
        groups=1,
        input=(4, 4),
        kernel=(4, 4),
        stride=(2, 2),
        padding=(1, 1),
        output_padding=(0, 0),
        dilation=(1, 1),
        bias=False,
        output=(8, 8),
        status="ok",
        message="",
        samples=3,
        median_ms=0.1 + 0.2,
        mean_ms=1 / 3,
        stddev_ms=math.nan,
        min_ms=1e-300,
        max_ms=123456.789012345678,
        q1_ms=0.25,
        q3_ms=0.75,
        ci_low_ms=None,
        ci_high_ms=None,
        flops=2**40 + 1,
        gflops=3.5,
        peak_fraction=0.125,
        max_abs_err=1.1920928955078125e-07,
        max_rel_err=2e-8,
        peak_mem_mb=12.5,
        threads=2,
        samples_ms=(0.1 + 0.2, 1 / 3, 2.0),
        inner_loops=10,
        stop_reason="precision",
        clock="perf_counter",
        seed=0,
    )
    row["pass"] = "forward"
    row.update(overrides)
    return row


def test_columns_follow_the_contract_then_extras() -> None:
    contract = tuple(c.strip() for c in CONTRACT.replace("\n", " ").split(","))
    assert COLUMNS[: len(contract)] == contract
    assert contract == CONTRACT_COLUMNS
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_the_schema_document_lists_every_column_in_order() -> None:
    text = (Path(__file__).parents[1] / "docs" / "csv-schema.md").read_text(encoding="utf-8")
    table = text.split("## Columns", 1)[1].split("\n#", 1)[0]
    documented = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert tuple(documented) == COLUMNS


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    row = make_row()
    with ResultWriter(path, "new") as w:
        w.write(row)
    frame = read_results(path)
    got = frame.iloc[0]
    assert got["input"] == "4x4" and got["output"] == "8x8"
    assert got["median_ms"] == 0.1 + 0.2  # repr: the exact double comes back
    assert got["mean_ms"] == 1 / 3
    assert got["min_ms"] == 1e-300
    assert got["max_ms"] == 123456.789012345678
    assert math.isnan(got["stddev_ms"]) and math.isnan(got["ci_low_ms"])
    assert got["flops"] == 2**40 + 1
    assert got["bias"] is False or got["bias"] == False  # noqa: E712  (numpy bool)
    assert got["pass"] == "forward" and got["status"] == "ok"
    assert parse_samples(got["samples_ms"]) == [0.1 + 0.2, 1 / 3, 2.0]
    assert frame["samples"].dtype == "Int64" and frame["median_ms"].dtype == "float64"


def test_text_layout_of_a_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row(input=(7,), kernel=(3, 3, 3), bias=True))
    header, line = path.read_text().splitlines()
    assert header == ",".join(COLUMNS)
    fields = dict(zip(COLUMNS, line.split(","), strict=True))
    assert fields["input"] == "7" and fields["kernel"] == "3x3x3"
    assert fields["bias"] == "true"
    assert fields["median_ms"] == repr(0.1 + 0.2)
    assert fields["samples_ms"] == f"{0.1 + 0.2!r};{1 / 3!r};2.0"
    assert fields["stddev_ms"] == "" and fields["ci_low_ms"] == ""


@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "'quoted", "plain"])
def test_formula_like_text_is_neutralised_and_restored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row(case=text, message=text, status="error"))
    raw = path.read_text().splitlines()[1]
    if text != "plain":
        assert f"'{text}" in raw
    frame = read_results(path)
    assert frame.iloc[0]["case"] == text and frame.iloc[0]["message"] == text


def test_message_with_commas_quotes_and_newlines_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    message = 'ValueError: bad "shape", see\nline two'
    with ResultWriter(path, "new") as w:
        w.write(make_row(message=message, status="error"))
    assert read_results(path).iloc[0]["message"] == message


def test_new_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("anything")
    with pytest.raises(InputError, match=r"exists; use --overwrite or --resume"):
        ResultWriter(path, "new")
    assert path.read_text() == "anything"


def test_overwrite_replaces(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("anything")
    with ResultWriter(path, "overwrite") as w:
        w.write(make_row())
    assert len(read_results(path)) == 1


def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
    assert path.exists()


def test_resume_appends_and_knows_done_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
        assert w.done_keys() == {("dcgan", "g2", "numpy/direct", "forward", "float32")}
    with ResultWriter(path, "resume") as w:
        assert w.done_keys() == {("dcgan", "g2", "numpy/direct", "forward", "float32")}
        w.write(make_row(**{"pass": "backward"}))
    frame = read_results(path)
    assert list(frame["pass"]) == ["forward", "backward"]


def test_resume_of_a_missing_file_starts_one(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "resume") as w:
        assert w.done_keys() == set()
        w.write(make_row())
    assert len(read_results(path)) == 1


def test_resume_drops_a_row_torn_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
    with path.open("a") as f:
        f.write("1,r1,2024,box,0.1.0,dcgan,g2,numpy/dir")  # the row in flight
    with ResultWriter(path, "resume") as w:
        assert len(w.done_keys()) == 1
        w.write(make_row(case="g3"))
    assert list(read_results(path)["case"]) == ["g2", "g3"]


def test_resume_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="schema_version"):
        ResultWriter(path, "resume")


def test_every_row_is_flushed_and_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    path = tmp_path / "r.csv"
    w = ResultWriter(path, "new")
    header_syncs = len(synced)
    w.write(make_row())
    assert len(synced) == header_syncs + 1
    # visible to another reader before the writer is closed
    assert len(read_results(path)) == 1
    w.close()


def test_invalid_rows_are_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        with pytest.raises(ValueError, match="missing"):
            w.write({"status": "ok"})
        with pytest.raises(ValueError, match="status"):
            w.write(make_row(status="great"))
        with pytest.raises(ValueError, match="unknown"):
            w.write({**make_row(), "surprise": 1})
    assert path.read_text().count("\n") == 1  # the header only


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False)


def test_reader_rejects_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
    text = path.read_text().replace("\n1,r1", "\n2,r1")
    path.write_text(text)
    with pytest.raises(InputError, match="schema_version 2 is not supported"):
        read_results(path)


def test_reader_names_missing_columns_and_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
    good = pd.read_csv(path, dtype=str, keep_default_na=False)
    _write_csv(path, good.drop(columns=["median_ms"]))
    with pytest.raises(InputError, match="missing columns: median_ms"):
        read_results(path)
    bad = good.copy()
    bad.loc[0, "median_ms"] = "fast"
    _write_csv(path, bad)
    with pytest.raises(InputError, match=r"line 2: column median_ms is not a number: 'fast'"):
        read_results(path)
    bad = good.copy()
    bad.loc[0, "status"] = "great"
    _write_csv(path, bad)
    with pytest.raises(InputError, match="unknown status 'great'"):
        read_results(path)
    reordered = good[[good.columns[1], good.columns[0], *good.columns[2:]]]
    _write_csv(path, reordered)
    with pytest.raises(InputError, match="order"):
        read_results(path)


def test_reader_accepts_extra_columns_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with ResultWriter(path, "new") as w:
        w.write(make_row())
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["future_column"] = "x"
    _write_csv(path, frame)
    assert read_results(path).iloc[0]["future_column"] == "x"


def test_reader_on_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_results(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="not a readable results CSV"):
        read_results(tmp_path / "empty.csv")


def test_header_only_file_reads_as_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    ResultWriter(path, "new").close()
    frame = read_results(path)
    assert len(frame) == 0 and tuple(frame.columns) == COLUMNS


def test_sidecar_is_atomic_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "results.csv"
    facts = {
        "peaks": {("cpu", "float32"): 100.5},
        "argv": ["deconvbench", "run"],
        "path": tmp_path,
        "bad": math.inf,
    }
    written = write_sidecar(csv_path, facts)
    assert written == tmp_path / "results.csv.json"
    data = json.loads(written.read_text())
    assert data["schema_version"] == 1
    assert data["peaks"] == {"cpu/float32": 100.5}
    assert data["path"] == str(tmp_path) and data["bad"] is None
    assert read_sidecar(csv_path) == data
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv.json"]  # no temporary left


def test_sidecar_failure_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_sidecar(tmp_path / "r.csv", {"a": 1})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_sidecar(tmp_path / "r.csv", {"a": 2})
    assert json.loads(target.read_text())["a"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv.json"]


def test_row_key() -> None:
    assert row_key(make_row()) == ("dcgan", "g2", "numpy/direct", "forward", "float32")


def test_sidecars_get_ordinary_permissions(tmp_path: Path) -> None:
    """mkstemp makes owner-only files; a sidecar must be as readable as its CSV."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    sidecar = write_sidecar(tmp_path / "r.csv", {"a": 1})
    assert os.stat(sidecar).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
