"""Shards (`run --shard I/N`) and `merge`: a partition that covers every case once, and a
join that refuses duplicated or conflicting rows without writing anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.cases.case import Case
from deconvbench.errors import InputError
from deconvbench.problem import Problem
from deconvbench.results.merge import merge, write
from deconvbench.results.reader import read_results
from deconvbench.results.sidecar import read_sidecar
from deconvbench.run.loop import shard

CASES = [
    "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1",
    "in_channels=2,out_channels=3,input=5,kernel=4,stride=2",
    "in_channels=3,out_channels=2,input=3x3,kernel=2,stride=1",
]


def _cases(n: int) -> list[Case]:
    p = Problem.create(batch=1, in_channels=1, out_channels=1, input=(3,), kernel=2)
    return [Case("s", f"c{i}", p) for i in range(n)]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_are_disjoint_cover_every_case_and_balance(count: int) -> None:
    cases = _cases(10)
    parts = [shard(cases, i, count) for i in range(1, count + 1)]
    names = [c.name for part in parts for c in part]
    assert sorted(names) == sorted(c.name for c in cases) and len(names) == len(set(names))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [shard(cases, i, count) for i in range(1, count + 1)]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli.app, list(args), catch_exceptions=False, env={"NO_COLOR": "1", "COLUMNS": "200"}
    )
    return result.exit_code, result.stderr


def _run(out: Path, *extra: str) -> None:
    args = [
        "run",
        "--impl",
        "numpy/direct",
        "--budget",
        "0.02",
        "--min-samples",
        "3",
        "-o",
        str(out),
        *extra,
    ]
    for spec in CASES:
        args += ["--case", spec]
    code, err = invoke(*args)
    assert code == 0, err


def test_shards_merge_into_the_whole_run(tmp_path: Path) -> None:
    parts = [tmp_path / f"part{i}.csv" for i in (1, 2)]
    for i, part in enumerate(parts, start=1):
        _run(part, "--shard", f"{i}/2")
    assert read_sidecar(parts[0])["shard"] == "1/2"
    sizes = [len(read_results(p)) for p in parts]
    assert sizes == [4, 2]  # cases 1 and 3, then case 2; two passes each
    code, err = invoke("merge", *map(str, parts), "-o", str(tmp_path / "all.csv"))
    assert code == 0, err
    merged = read_results(tmp_path / "all.csv")
    assert len(merged) == 6 and merged["case"].nunique() == 3
    facts = read_sidecar(tmp_path / "all.csv")
    assert [s["path"] for s in facts["merged_from"]] == [str(p) for p in parts]  # type: ignore[index, union-attr]


def test_duplicates_and_conflicts_are_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _run(a)
    _run(b)  # the same rows measured again: conflicting times
    copy = tmp_path / "copy.csv"
    copy.write_bytes(a.read_bytes())
    with pytest.raises(InputError, match="duplicated row"):
        merge([a, copy])
    with pytest.raises(InputError, match="conflicting row"):
        merge([a, b])
    out = tmp_path / "out.csv"
    code, err = invoke("merge", str(a), str(b), "-o", str(out))
    assert code == 2 and "conflicting" in err and not out.exists()


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: [d / "a.csv"], "at least two"),
        (lambda d: [d / "a.csv", d / "a.csv"], "named twice"),
        (lambda d: [d / "a.csv", d / "missing.csv"], "no such file"),
        (lambda d: [d / "a.csv", d / "garbage.csv"], "garbage.csv"),
    ],
)
def test_bad_inputs(tmp_path: Path, setup: object, fragment: str) -> None:
    _run(tmp_path / "a.csv")
    (tmp_path / "garbage.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match=fragment):
        merge(setup(tmp_path))  # type: ignore[operator]


def test_never_clobbers(tmp_path: Path) -> None:
    parts = [tmp_path / "p1.csv", tmp_path / "p2.csv"]
    for i, part in enumerate(parts, start=1):
        _run(part, "--shard", f"{i}/2")
    out = tmp_path / "all.csv"
    out.write_text("precious\n")
    with pytest.raises(InputError, match="exists"):
        write(merge(parts), out)
    assert out.read_text() == "precious\n"
    with pytest.raises(InputError, match="one of the inputs"):
        write(merge(parts), parts[0], overwrite=True)
    write(merge(parts), out, overwrite=True)
    assert len(read_results(out)) == 6


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b", "1/"])
def test_bad_shard_option(tmp_path: Path, text: str) -> None:
    code, err = invoke("run", "--case", CASES[0], "--shard", text, "-o", str(tmp_path / "x.csv"))
    assert code == 2 and "--shard" in err and not (tmp_path / "x.csv").exists()
