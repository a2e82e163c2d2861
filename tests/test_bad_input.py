"""Malformed inputs, each through the real command line: suite files, ``--case`` strings,
options and results files.

Every case must: exit 2; print exactly one line on stderr, ``deconvbench: error: ...``, that
names the culprit (file, entry, key, option or value); show no traceback; and leave every
file in its working folder as it was, byte for byte and untouched (the folder holds a
pre-existing results CSV with its sidecar, which the ``run`` cases name as ``-o`` with
``--overwrite``, so a check that came too late would clobber it). Nothing may be measured
first: peak calibration and the run loop fail the test if they are reached.

The cases go through ``cli.main`` in-process (the console script's own entry, so typer's
usage errors get the same one-line treatment as ours), and a handful again through a real
``python -m deconvbench`` subprocess, to see the real stderr.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from deconvbench import cli
from deconvbench.cli import run as cli_run
from deconvbench.results.schema import COLUMNS
from deconvbench.results.sidecar import write_sidecar
from deconvbench.results.writer import ResultWriter
from deconvbench.run import loop

from helpers import row

GOOD = "in_channels=2,out_channels=2,input=5x5,kernel=3,stride=2,padding=1"
HEAD = 'name = "t"\ndescription = "bad-input cases"\n'
CASE = '[[case]]\nname = "c1"\nin_channels = 2\nout_channels = 2\ninput = [5, 5]\nkernel = 3\n'
SWEEP = '[[sweep]]\nname = "k{kernel}"\nin_channels = [2]\nout_channels = [2]\n'
RUN = ("run", "--impl", "numpy/direct", "-o", "{d}/existing.csv", "--overwrite")
"""A run that would clobber the pre-existing results if the bad input were not refused."""
ROOT = os.geteuid() == 0
ROOT_SKIP = "running as root: chmod 000 does not stop root from reading, so there is no error"


@dataclass(frozen=True)
class Bad:
    """One malformed input: the command line, words its error must contain, files it needs."""

    args: tuple[str, ...]
    culprit: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()  # files made chmod 000


def suite(body: str | bytes, name: str = "bad.toml") -> Bad:
    """``run --suite bad.toml`` with a suite file whose text is ``body``."""
    return Bad((*RUN, "--suite", f"{{d}}/{name}"), (name,), {name: body})


def with_culprit(bad: Bad, *words: str) -> Bad:
    return Bad(bad.args, bad.culprit + words, bad.files, bad.unreadable)


def case(spec: str, *words: str) -> Bad:
    """``run --case SPEC``: the message names the --case option and the culprit words."""
    return Bad((*RUN, "--case", spec), ("--case #1", *words))


def opt(*args_and_words: str, command: tuple[str, ...] = (*RUN, "--case", GOOD)) -> Bad:
    """``COMMAND OPTION [VALUE]``: the error must name the option (its first word)."""
    return Bad((*command, *args_and_words), (args_and_words[0],))


HEADER = ",".join(COLUMNS) + "\n"
# A row cut inside its quoted case name, then more lines: not a crash's torn tail (which the
# reader drops, test_crash_safety.py) but a file damaged in the middle.
TORN = HEADER + '1,0123456789ab,,,,smoke,"2d-k4\n1,0123456789ab\n'
CUT_HEADER = HEADER[:40]  # the header itself cut short: no complete line at all
GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd" + bytes(range(256))
COMPARE = ("compare", "{d}/existing.csv")
MERGE_TO = ("-o", "{d}/merged.csv")


def csv_cases(name: str, content: str | bytes, words: tuple[str, ...], tag: str) -> list[object]:
    """The same bad results file given to compare, merge and report."""
    files = {name: content}
    return [
        pytest.param(Bad((*COMPARE, f"{{d}}/{name}"), (name, *words), files), id=f"compare-{tag}"),
        pytest.param(
            Bad(("merge", "{d}/existing.csv", f"{{d}}/{name}", *MERGE_TO), (name, *words), files),
            id=f"merge-{tag}",
        ),
        pytest.param(Bad(("report", f"{{d}}/{name}"), (name, *words), files), id=f"report-{tag}"),
    ]


def schema_99() -> str:
    return HEADER + "99" + "," * (HEADER.count(",")) + "\n"


CASES: list[object] = [
    # --- TOML syntax -----------------------------------------------------------------------
    pytest.param(
        with_culprit(suite(HEAD + "[[case]\nname = 'c1'\n"), "invalid TOML", "line 3"),
        id="toml-unclosed-table-header",
    ),
    pytest.param(with_culprit(suite(HEAD + "kernel = \n"), "invalid TOML"), id="toml-no-value"),
    pytest.param(
        with_culprit(suite(HEAD + 'name = "again"\n' + CASE), "invalid TOML"),
        id="toml-duplicate-key",
    ),
    pytest.param(
        with_culprit(suite(HEAD.encode() + b"# caf\xe9\n" + CASE.encode()), "UTF-8"),
        id="toml-not-utf8",
    ),
    pytest.param(
        with_culprit(suite(HEAD + 'description = """never closed\n'), "invalid TOML"),
        id="toml-unterminated-string",
    ),
    # --- unknown keys, with a suggestion -------------------------------------------------------
    pytest.param(
        with_culprit(suite(HEAD + CASE + "kernal = 3\n"), "case #1", "'kernal'", "'kernel'"),
        id="key-unknown-in-case",
    ),
    pytest.param(
        with_culprit(
            suite('name = "t"\ndescripton = "x"\n' + CASE), "'descripton'", "'description'"
        ),
        id="key-unknown-top-level",
    ),
    pytest.param(
        with_culprit(suite(HEAD + "[defaults]\nstrid = 2\n" + CASE), "[defaults]", "'stride'"),
        id="key-unknown-in-defaults",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP.replace("k{kernel}", "k{kernal}") + "kernel = [2, 3]\n"),
            "sweep #1",
            "{kernal}",
            "'kernel'",
        ),
        id="key-unknown-template-field",
    ),
    pytest.param(case(GOOD + ",kernl=3", "'kernl'", "did you mean 'kernel'"), id="key-case-typo"),
    # --- wrong types -------------------------------------------------------------------------
    pytest.param(
        with_culprit(
            suite(HEAD + CASE.replace("in_channels = 2", 'in_channels = "2"')),
            "case #1 'c1'",
            "in_channels",
            "integer",
        ),
        id="type-string-for-int",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE + "bias = 1\n"), "bias", "true or false"),
        id="type-int-for-bool",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE.replace("input = [5, 5]", "input = 5")), "input"),
        id="type-scalar-input",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE.replace("kernel = 3", "kernel = 2.5")), "kernel", "2.5"),
        id="type-float-kernel",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE + 'passes = "forward"\n'), "passes"),
        id="type-string-passes",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE + 'dtype = "float7"\n'), "dtype", "float7"),
        id="type-unknown-dtype",
    ),
    pytest.param(
        with_culprit(suite(HEAD + CASE.replace("[[case]]", "[case]")), "'case'", "[[case]]"),
        id="type-table-not-array",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP.replace("{kernel}", "{kernel.__class__}") + "kernel = [2, 3]\n"),
            "{kernel.__class__}",
        ),
        id="template-attribute-access",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP.replace("{kernel}", "{kernel[0]}") + "kernel = [2]\n"), "{kernel[0]}"
        ),
        id="template-index-access",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP.replace("{kernel}", "{kernel:999999999}") + "kernel = [2]\n"),
            "sweep #1",
            "{kernel:999999999}",
            "too wide",
        ),
        id="template-huge-width",
    ),
    # --- invalid problems --------------------------------------------------------------------
    pytest.param(
        with_culprit(
            suite(HEAD + CASE + "stride = 2\noutput_padding = 2\n"),
            "case #1 'c1'",
            "output_padding",
            "max(stride, dilation)",
        ),
        id="problem-output-padding",
    ),
    pytest.param(
        case(GOOD.replace("out_channels=2", "out_channels=3") + ",groups=2", "groups"),
        id="problem-groups-not-dividing",
    ),
    pytest.param(
        case(GOOD.replace("in_channels=2", "in_channels=0"), "in_channels", "0"),
        id="problem-zero-channels",
    ),
    pytest.param(case(GOOD + ",batch=0", "batch"), id="problem-zero-batch"),
    pytest.param(
        with_culprit(suite(HEAD + CASE + "stride = -1\n"), "stride", "-1"),
        id="problem-negative-stride",
    ),
    pytest.param(
        case(GOOD.replace("input=5x5", "input=5x-3"), "input"), id="problem-negative-size"
    ),
    pytest.param(
        case("in_channels=2,out_channels=2,input=1,kernel=1,padding=1", "output"),
        id="problem-output-below-1",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + CASE.replace("kernel = 3", "kernel = [3, 3, 3]")),
            "kernel",
            "3 values",
            "2 spatial dimensions",
        ),
        id="problem-kernel-dims-mismatch",
    ),
    pytest.param(case(GOOD + ",dilation=0", "dilation"), id="problem-zero-dilation"),
    # --- sweeps need lists ---------------------------------------------------------------------
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP + "input = [[8, 8]]\nkernel = 3\n"),
            "sweep #1",
            "'kernel'",
            "must be a list",
        ),
        id="sweep-scalar",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP + "input = [8, 8]\nkernel = [3]\n"),
            "sweep #1",
            "'input'",
            "per-dimension lists",
        ),
        id="sweep-flat-input",
    ),
    pytest.param(
        with_culprit(suite(HEAD + SWEEP + "input = [[8, 8]]\nkernel = []\n"), "'kernel'", "empty"),
        id="sweep-empty-list",
    ),
    pytest.param(
        with_culprit(
            suite(HEAD + SWEEP + "input = [[8, 8]]\nkernel = [3]\ngroups = [3]\n"),
            "sweep #1",
            "generated case 'k3'",
            "groups",
        ),
        id="sweep-generates-invalid-case",
    ),
    # --- suites and globs that match nothing ----------------------------------------------------
    pytest.param(
        Bad((*RUN, "--suite", "dcgn"), ("'dcgn'", "did you mean 'dcgan'")), id="suite-unknown-name"
    ),
    pytest.param(
        Bad((*RUN, "--suite", "{d}/missing.toml"), ("missing.toml", "cannot read")),
        id="suite-missing-file",
    ),
    pytest.param(with_culprit(suite(HEAD), "no cases"), id="suite-without-cases"),
    pytest.param(
        with_culprit(suite(HEAD + CASE + CASE), "case #2 'c1'", "duplicate case name"),
        id="suite-duplicate-case-names",
    ),
    pytest.param(
        Bad(("run", "--case", GOOD, "--impl", "nothing/*"), ("--impl", "'nothing/*'")),
        id="impl-glob-matches-nothing",
    ),
    pytest.param(
        Bad(("verify", "--case", GOOD, "--impl", "numpy/directt"), ("numpy/directt",)),
        id="impl-name-misspelt",
    ),
    pytest.param(Bad((*RUN,), ("nothing to run", "--suite", "--case")), id="run-nothing-named"),
    # --- malformed --case strings -----------------------------------------------------------
    pytest.param(case("", "is not a key=value pair"), id="case-empty"),
    pytest.param(case("in_channels", "'in_channels'", "key=value"), id="case-no-equals"),
    pytest.param(case("=3," + GOOD, "'=3'", "key=value"), id="case-no-key"),
    pytest.param(case(GOOD + ",groups=", "groups", "missing value"), id="case-no-value"),
    pytest.param(case(GOOD + ",", "key=value"), id="case-trailing-comma"),
    pytest.param(case(GOOD.replace("5x5", "4x4x4x4"), "input", "4x4x4x4"), id="case-4d-input"),
    pytest.param(case(GOOD.replace("5x5", "5by5"), "input", "5by5"), id="case-not-a-number"),
    pytest.param(case(GOOD + ",kernel=4", "kernel", "twice"), id="case-key-twice"),
    pytest.param(case("in_channels=2", "missing required keys", "'input'"), id="case-missing-keys"),
    pytest.param(case(GOOD + ",bias=maybe", "bias", "maybe"), id="case-bad-bool"),
    pytest.param(case(GOOD + ",passes=forward+sideways", "sideways"), id="case-bad-pass"),
    pytest.param(case(GOOD.replace("kernel=3", "kernel=3.5"), "kernel", "3.5"), id="case-float"),
    pytest.param(case(GOOD.replace(",", ";"), "in_channels", "2;out"), id="case-semicolons"),
    # --- run / verify options -------------------------------------------------------------------
    pytest.param(opt("--threads", "0"), id="opt-threads-0"),
    pytest.param(opt("--threads", "many"), id="opt-threads-text"),
    pytest.param(opt("--pass", "sideways"), id="opt-pass"),
    pytest.param(opt("--dtype", "float7"), id="opt-dtype"),
    pytest.param(opt("--shard", "3/2"), id="opt-shard-3-of-2"),
    pytest.param(opt("--shard", "0/2"), id="opt-shard-0"),
    pytest.param(opt("--shard", "half"), id="opt-shard-text"),
    pytest.param(opt("--precision", "2"), id="opt-precision-2"),
    pytest.param(opt("--precision", "two"), id="opt-precision-text"),
    pytest.param(
        Bad((*RUN, "--case", GOOD, "--timeout", "-1"), ("timeout", "-1")), id="opt-timeout-negative"
    ),
    pytest.param(Bad((*RUN, "--case", GOOD, "--budget", "0"), ("budget", "0")), id="opt-budget-0"),
    pytest.param(opt("--min-samples", "0"), id="opt-min-samples-0"),
    pytest.param(opt("--rounds", "0"), id="opt-rounds-0"),
    pytest.param(opt("--rounds", "many"), id="opt-rounds-text"),
    pytest.param(
        Bad((*RUN, "--case", GOOD, "--baseline-impl", "numpy/nope"), ("'numpy/nope'",)),
        id="opt-baseline-unknown",
    ),
    pytest.param(opt("--frobnicate"), id="opt-unknown-option"),
    pytest.param(
        Bad((*RUN[:-1], "--case", GOOD, "--overwrite", "--resume"), ("--overwrite", "--resume")),
        id="opt-overwrite-and-resume",
    ),
    pytest.param(opt("--pass", "up", command=("verify", "--case", GOOD)), id="verify-opt-pass"),
    pytest.param(opt("--format", "xml", command=("list",)), id="list-opt-format"),
    # --- compare options --------------------------------------------------------------------
    pytest.param(opt("--threshold", "5", command=(*COMPARE, "{d}/other.csv")), id="cmp-thr-5"),
    pytest.param(
        opt("--threshold", "max:5%", command=(*COMPARE, "{d}/other.csv")), id="cmp-thr-stat"
    ),
    pytest.param(opt("--alpha", "1.5", command=(*COMPARE, "{d}/other.csv")), id="cmp-alpha-1.5"),
    pytest.param(opt("--alpha", "x", command=(*COMPARE, "{d}/other.csv")), id="cmp-alpha-text"),
    pytest.param(opt("--format", "xml", command=(*COMPARE, "{d}/other.csv")), id="cmp-format"),
    pytest.param(opt("--normalize", "max", command=(*COMPARE, "{d}/other.csv")), id="cmp-norm"),
    pytest.param(
        Bad((*COMPARE, "{d}/other.csv", "{d}/existing.csv"), ("3 files",)), id="cmp-three-files"
    ),
    pytest.param(
        Bad(
            (*COMPARE, "{d}/other.csv", "--baseline-impl", "numpy/direct"),
            ("--baseline-impl", "one"),
        ),
        id="cmp-baseline-with-two-files",
    ),
    pytest.param(
        Bad(
            ("compare", "{d}/other.csv", "{d}/existing.csv", "--normalize", "peak"),
            ("other.csv.json", "no such file"),
        ),
        id="cmp-peak-without-sidecar",
    ),
    # --- results CSVs: empty, truncated, garbage, wrong schema ------------------------------
    *csv_cases("empty.csv", "", ("not a readable results CSV",), "empty"),
    *csv_cases("torn.csv", TORN, ("not a readable results CSV",), "torn-row"),
    *csv_cases("cut.csv", CUT_HEADER, ("missing columns",), "cut-header"),
    *csv_cases("garbage.csv", GARBAGE, ("not a readable results CSV",), "binary"),
    *csv_cases("columns.csv", "schema_version,case\n1,a\n", ("missing columns",), "columns"),
    *csv_cases("v99.csv", schema_99(), ("schema_version 99",), "schema-99"),
    pytest.param(
        Bad((*COMPARE, "{d}/header.csv"), ("header.csv", "no rows"), {"header.csv": HEADER}),
        id="cmp-candidate-header-only",
    ),
    pytest.param(
        Bad(("report", "{d}/header.csv"), ("header.csv", "no ok rows"), {"header.csv": HEADER}),
        id="report-header-only",
    ),
    pytest.param(
        Bad(("compare", "{d}/nope.csv", "{d}/other.csv"), ("nope.csv", "no such file")),
        id="cmp-missing-file",
    ),
    # --- merge and report options ---------------------------------------------------------------
    pytest.param(Bad(("merge", "{d}/existing.csv", *MERGE_TO), ("at least two",)), id="merge-one"),
    pytest.param(
        Bad(("merge", "{d}/existing.csv", "{d}/existing.csv", *MERGE_TO), ("named twice",)),
        id="merge-same-file-twice",
    ),
    pytest.param(
        Bad(("merge", "{d}/existing.csv", "{d}/other.csv"), ("--output",)), id="merge-no-output"
    ),
    pytest.param(
        Bad(
            ("merge", "{d}/existing.csv", "{d}/other.csv", "-o", "{d}/other.csv"),
            ("other.csv", "exists"),
        ),
        id="merge-output-exists",
    ),
    pytest.param(
        Bad(
            ("merge", "{d}/existing.csv", "{d}/other.csv", "-o", "{d}/other.csv", "--overwrite"),
            ("other.csv", "one of the inputs"),
        ),
        id="merge-output-is-an-input",
    ),
    pytest.param(
        Bad(
            ("merge", "{d}/existing.csv", "{d}/other.csv", "-o", "{d}/outdir", "--overwrite"),
            ("outdir", "directory"),
        ),
        id="merge-output-directory",
    ),
    pytest.param(
        Bad(
            ("merge", "{d}/existing.csv", "{d}/other.csv", "-o", "{d}/notes.txt/m.csv"),
            ("notes.txt",),
        ),
        id="merge-output-under-a-file",
    ),
    pytest.param(
        Bad(
            ("report", "{d}/existing.csv", "--baseline-impl", "numpy/nope"),
            ("--baseline-impl", "numpy/nope"),
        ),
        id="report-baseline-unknown",
    ),
    pytest.param(
        Bad(
            ("report", "{d}/existing.csv", "--plot", "{d}/notes.txt/plots"), ("--plot", "notes.txt")
        ),
        id="report-plot-under-a-file",
    ),
    # --- unreadable and unwritable paths --------------------------------------------------------
    pytest.param(
        Bad((*RUN[:4], "{d}/outdir", "--case", GOOD), ("outdir", "directory")),
        id="run-output-directory",
    ),
    pytest.param(
        Bad((*RUN[:4], "{d}/notes.txt/r.csv", "--case", GOOD), ("--output", "notes.txt")),
        id="run-output-under-a-file",
    ),
    pytest.param(
        Bad((*RUN[:-1], "--case", GOOD), ("existing.csv", "--overwrite", "--resume")),
        id="run-output-exists",
    ),
    pytest.param(
        Bad((*RUN[:4], "{d}/notes.txt", "--resume", "--case", GOOD), ("notes.txt",)),
        id="run-resume-foreign-file-unchanged",
    ),
    pytest.param(
        Bad((*COMPARE, "{d}/outdir"), ("outdir",)),
        id="cmp-directory-as-results",
    ),
    pytest.param(
        Bad(
            (*COMPARE, "{d}/locked.csv"),
            ("locked.csv", "not readable"),
            {"locked.csv": HEADER},
            unreadable=("locked.csv",),
        ),
        id="cmp-unreadable-results",
        marks=pytest.mark.skipif(ROOT, reason=ROOT_SKIP),
    ),
    pytest.param(
        Bad(
            (*RUN, "--suite", "{d}/locked.toml"),
            ("locked.toml", "cannot read"),
            {"locked.toml": HEAD + CASE},
            unreadable=("locked.toml",),
        ),
        id="suite-unreadable",
        marks=pytest.mark.skipif(ROOT, reason=ROOT_SKIP),
    ),
]


# --- the working folder and the invocation --------------------------------------------------


def _results_file(path: Path, case_name: str) -> None:
    """A valid results file with a sidecar: two ok strategies, both passes."""
    with ResultWriter(path, "new") as writer:
        for impl in ("numpy/direct", "torch-cpu/native"):
            for pass_ in ("forward", "backward"):
                samples = [1.0, 1.1, 0.9, 1.05, 0.95] if impl == "numpy/direct" else [2.0] * 5
                writer.write(row(impl, case=case_name, pass_=pass_, samples=samples, gflops=1.0))
    write_sidecar(path, {"run_id": "0123456789ab"})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _results_file(tmp_path / "existing.csv", "a")
    _results_file(tmp_path / "other.csv", "b")
    (tmp_path / "other.csv.json").unlink()  # compare --normalize peak needs it
    (tmp_path / "notes.txt").write_text("a regular file\nwithout a final newline")
    (tmp_path / "outdir").mkdir()
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root``: kind, mode, size, mtime and content hash (when readable)."""
    state: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if path.is_dir():
            state[str(path.relative_to(root))] = ("dir", mode)
            continue
        try:
            digest: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
        except PermissionError:
            digest = None
        state[str(path.relative_to(root))] = ("file", mode, st.st_size, st.st_mtime_ns, digest)
    return state


def _no_measuring(*args: object, **kwargs: object) -> NoReturn:
    pytest.fail("reached measurement (or peak calibration) before refusing the input")


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``deconvbench ARGS`` through the console script's entry point; (code, out, err)."""
    sys.argv = ["deconvbench", *args]
    with pytest.raises(SystemExit) as ended:
        cli.main()
    out, err = capsys.readouterr()
    code = ended.value.code
    return (code if isinstance(code, int) else 1), out, err


def assert_refused(code: int, err: str, culprit: tuple[str, ...]) -> None:
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("deconvbench: error: "), lines[0]
    assert len(lines[0]) < 600, lines[0]  # short: a sentence, not a dump
    for word in culprit:
        assert word in lines[0], f"{word!r} not named in: {lines[0]}"


def _prepare(bad: Bad, root: Path) -> list[str]:
    for name, content in bad.files.items():
        target = root / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    for name in bad.unreadable:
        (root / name).chmod(0)
    return [a.replace("{d}", str(root)) for a in bad.args]


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_refused_cleanly(
    bad: Bad,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(folder)  # a default output (results/...) would land here and be seen
    monkeypatch.setattr(sys, "argv", sys.argv)  # restored after invoke() sets it
    monkeypatch.setattr(loop, "execute", _no_measuring)
    monkeypatch.setattr(cli_run, "calibrate_peaks_with_reasons", _no_measuring)
    args = _prepare(bad, folder)
    before = snapshot(folder)
    code, _, err = invoke(args, capsys)
    assert snapshot(folder) == before, "a file was created, changed or removed"
    assert_refused(code, err, tuple(w.replace("{d}", str(folder)) for w in bad.culprit))


def test_the_list_is_long_enough() -> None:
    """The list covers every kind of input the tool reads, several ways each."""
    assert len(CASES) >= 45


# --- a few through a real process: the real stderr, no traceback ------------------------------

REAL = [
    pytest.param(["run", "--threads", "0", "--case", GOOD], ("--threads",), id="threads"),
    pytest.param(["run", "--case", GOOD + ",kernl=3"], ("'kernl'", "'kernel'"), id="case-typo"),
    pytest.param(["run", "--suite", "{d}/bad.toml"], ("bad.toml", "invalid TOML"), id="toml"),
    pytest.param(["compare", "{d}/garbage.csv", "{d}/existing.csv"], ("garbage.csv",), id="csv"),
    pytest.param(
        ["merge", "{d}/existing.csv", "{d}/other.csv", "-o", "{d}/other.csv"],
        ("other.csv", "exists"),
        id="merge",
    ),
    pytest.param(
        ["run", "--case", GOOD, "-o", "{d}/existing.csv"], ("existing.csv",), id="clobber"
    ),
]


@pytest.mark.parametrize(("args", "culprit"), REAL)
def test_real_process_prints_one_line_and_no_traceback(
    args: list[str], culprit: tuple[str, ...], folder: Path
) -> None:
    (folder / "bad.toml").write_text(HEAD + "[[case]\n")
    (folder / "garbage.csv").write_bytes(GARBAGE)
    before = snapshot(folder)
    done = subprocess.run(
        [sys.executable, "-m", "deconvbench", *(a.replace("{d}", str(folder)) for a in args)],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    )
    assert snapshot(folder) == before
    assert done.stdout == ""
    assert_refused(done.returncode, done.stderr, culprit)
