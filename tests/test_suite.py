"""Suite files and --case strings: shipped suites, sweeps, every error path, round trips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given

from deconvbench.cases.case import CLI_SUITE
from deconvbench.cases.case_spec import parse_case
from deconvbench.cases.gather import cases_for
from deconvbench.cases.measure_table import MeasureRequest
from deconvbench.cases.suite_file import Suite, load_suite, shipped_suites, suite_names
from deconvbench.errors import InputError
from deconvbench.problem import PASSES, Problem

from problems import EDGE_CASES, problems

MODELS = {"seed", "dcgan", "pix2pix", "cyclegan", "fcn", "fsrcnn", "enet", "vae", "wavegan"}
SWEEPS = {f"sweep-{x}" for x in ("kernel", "stride", "channels", "batch", "input")}
SHIPPED = {"smoke", "unet3d", "unet-decoder", "seed-keras", *MODELS, *SWEEPS}

HEAD = 'name = "t"\ndescription = "a test suite"\n'
CASE = "in_channels = 4\nout_channels = 4\ninput = [8, 8]\nkernel = 4\n"


def write(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Suite:
    return load_suite(str(write(tmp_path, text)))


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "t.toml") in message  # the file is named
    return message


# --- shipped suites ------------------------------------------------------------------------


def test_every_required_suite_is_shipped_and_names_match_files() -> None:
    assert set(suite_names()) == SHIPPED
    loaded = shipped_suites()
    assert [s.name for s in loaded] == sorted(SHIPPED)
    for s in loaded:
        assert s.path.stem == s.name
        assert s.cases and s.description.strip()
        assert all(c.suite == s.name for c in s.cases)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_suite_loads_by_name_and_path(name: str) -> None:
    by_name = load_suite(name)
    assert load_suite(str(by_name.path)) == by_name


def _outputs(name: str) -> dict[str, tuple[int, ...]]:
    return {c.name: c.problem.output for c in load_suite(name).cases}


def test_dcgan_is_the_pytorch_examples_generator_at_batch_16() -> None:
    cases = load_suite("dcgan").cases
    assert [(c.problem.in_channels, c.problem.out_channels) for c in cases] == [
        (100, 512),
        (512, 256),
        (256, 128),
        (128, 64),
        (64, 3),
    ]
    assert [c.problem.output for c in cases] == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert {(c.problem.batch, c.problem.kernel, c.problem.bias) for c in cases} == {
        (16, (4, 4), False)
    }


def test_seed_case_is_mnist_26x26x32_to_52x52() -> None:
    base = {c.name: c.problem for c in load_suite("seed").cases}["k3-b32"]
    assert (base.in_channels, base.out_channels, base.input) == (32, 32, (26, 26))
    assert (base.kernel, base.stride, base.padding, base.output_padding) == (
        (3, 3),
        (2, 2),
        (1, 1),
        (1, 1),
    )
    assert base.output == (52, 52)
    batches = {p.batch for p in (c.problem for c in load_suite("seed").cases)}
    assert {1, 32, 128} <= batches


def test_model_suites_reach_their_models_output_sizes() -> None:
    assert _outputs("pix2pix")["up8"] == (256, 256)
    assert _outputs("cyclegan")["r9-up2"] == (256, 256)
    assert _outputs("enet")["fullconv"] == (360, 480)
    assert _outputs("vae")["d5"] == (64, 64)
    assert _outputs("wavegan")["upconv4"] == (16384,)
    assert _outputs("unet3d")["up3"] == (32, 48, 48)
    fsrcnn = {c.name: c.problem for c in load_suite("fsrcnn").cases}
    for p in fsrcnn.values():  # the output is exactly the upscaling factor times the input
        assert p.output == tuple(i * s for i, s in zip(p.input, p.stride, strict=True))
    fcn = {(c.problem.kernel, c.problem.stride) for c in load_suite("fcn").cases}
    assert {((16, 16), (8, 8)), ((64, 64), (32, 32))} <= fcn


def test_smoke_is_tiny_and_covers_1d_2d_3d() -> None:
    cases = load_suite("smoke").cases
    assert {c.problem.ndim for c in cases} == {1, 2, 3}
    assert all(c.problem.flops_forward < 2e6 for c in cases)
    assert all(c.passes == PASSES for c in cases)


@pytest.mark.parametrize("name", sorted(n for n in SHIPPED if n.startswith("sweep-")))
def test_sweeps_are_moderate(name: str) -> None:
    cases = load_suite(name).cases
    assert 5 <= len(cases) <= 12
    assert max(c.problem.flops_forward for c in cases) <= 1.1e9


# --- sweeps --------------------------------------------------------------------------------


def test_sweep_expands_the_cartesian_product_in_file_order(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        HEAD
        + """
[defaults]
batch = 2
[[case]]
name = "first"
"""
        + CASE
        + """
[[sweep]]
name = "i{input}-k{kernel}-s{stride}-{bias}-b{batch}"
in_channels = [4]
out_channels = [2]
input = [[8, 8], [4, 6]]
kernel = [2, 3]
stride = [1, 2, 3]
bias = [true]
passes = ["forward"]
""",
    )
    assert len(s.cases) == 1 + 2 * 2 * 3
    names = [c.name for c in s.cases]
    assert names[:4] == ["first", "i8x8-k2-s1-true-b2", "i8x8-k2-s2-true-b2", "i8x8-k2-s3-true-b2"]
    assert names[-1] == "i4x6-k3-s3-true-b2"
    swept = s.cases[1:]
    assert all(c.passes == ("forward",) and c.problem.batch == 2 for c in swept)
    assert s.cases[0].passes == PASSES
    assert swept[-1].problem == Problem.create(
        batch=2, in_channels=4, out_channels=2, input=(4, 6), kernel=3, stride=3, bias=True
    )


def test_sweep_renders_per_dimension_tuples_and_format_specs(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        HEAD
        + """
[[sweep]]
name = "k{kernel}-b{batch:03d}-{passes}"
batch = [7]
in_channels = [1]
out_channels = [1]
input = [[5, 5, 5]]
kernel = [[1, 2, 3], 2]
""",
    )
    assert [c.name for c in s.cases] == ["k1x2x3-b007-forward+backward", "k2-b007-forward+backward"]
    assert s.cases[0].problem.kernel == (1, 2, 3)
    assert s.cases[1].problem.kernel == (2, 2, 2)


def test_shipped_sweep_names() -> None:
    assert [c.name for c in load_suite("sweep-stride").cases] == [
        f"k{k}-s{s}" for k in (3, 4) for s in (1, 2, 3, 4)
    ]
    assert [c.name for c in load_suite("sweep-input").cases][:2] == ["i4x4", "i8x8"]


# --- errors in suite files -----------------------------------------------------------------

BAD_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "toml-syntax": (HEAD + "[[case]]\nname = \n", ("invalid TOML", "line 4", "column")),
    "top-level-unknown": (HEAD + "[[cases]]\nname='a'\n", ("unknown key 'cases'", "'case'?")),
    "missing-name": ('description = "d"\n[[case]]\nname="a"\n' + CASE, ("key 'name'",)),
    "missing-description": ('name = "n"\n[[case]]\nname="a"\n' + CASE, ("'description'",)),
    "empty-name": ('name = ""\ndescription = "d"\n[[case]]\nname="a"\n' + CASE, ("name:",)),
    "description-not-string": ('name = "n"\ndescription = 3\n', ("description:", "integer")),
    "empty-suite": (HEAD, ("no cases",)),
    "case-not-array": (HEAD + "[case]\nname = 'a'\n", ("array of tables", "[[case]]")),
    "case-array-of-ints": (HEAD + "case = [1, 2]\n", ("array of tables",)),
    "unknown-case-key": (
        HEAD + "[[case]]\nname='g3'\nkernal = 3\n" + CASE,
        ("case #1 'g3'", "unknown key 'kernal'", "did you mean 'kernel'"),
    ),
    "bool-for-int": (
        HEAD + "[[case]]\nname='a'\nbatch = true\n" + CASE,
        ("case #1 'a'", "batch: expected an integer", "true (a boolean)"),
    ),
    "string-for-int": (
        HEAD + "[[case]]\nname='a'\nstride = \"2\"\n" + CASE,
        ("stride: expected an integer or a list", '"2" (a string)'),
    ),
    "float-for-int": (HEAD + "[[case]]\nname='a'\ngroups = 2.0\n" + CASE, ("groups:", "float")),
    "bool-in-list": (
        HEAD + "[[case]]\nname='a'\npadding = [1, true]\n" + CASE,
        ("padding: expected an integer or a list",),
    ),
    "input-scalar": (
        HEAD + "[[case]]\nname='a'\nin_channels=1\nout_channels=1\nkernel=1\ninput = 32\n",
        ("case #1 'a'", "input: expected a list", "1-D/2-D/3-D"),
    ),
    "input-4d": (
        HEAD + "[[case]]\nname='a'\nin_channels=1\nout_channels=1\nkernel=1\ninput=[1,2,3,4]\n",
        ("input: expected a list",),
    ),
    "kernel-length": (
        HEAD + "[[case]]\nname='a'\nin_channels=1\nout_channels=1\nkernel=[3,3,3]\ninput=[4,4]\n",
        ("case #1 'a'", "kernel: has 3 values", "2 spatial dimensions"),
    ),
    "invalid-output-padding": (
        HEAD + "[[case]]\nname='a'\nstride = 2\noutput_padding = 2\n" + CASE,
        ("case #1 'a'", "output_padding: must satisfy"),
    ),
    "groups-not-dividing": (
        HEAD + "[[case]]\nname='a'\ngroups = 3\n" + CASE,
        ("groups: must divide in_channels",),
    ),
    "negative-padding": (HEAD + "[[case]]\nname='a'\npadding = -1\n" + CASE, ("padding:", ">= 0")),
    "output-too-small": (
        HEAD + "[[case]]\nname='a'\npadding = 9\n" + CASE,
        ("output size", "must be >= 1"),
    ),
    "bad-dtype": (HEAD + "[[case]]\nname='a'\ndtype = 'float33'\n" + CASE, ("dtype: must be",)),
    "bias-string": (
        HEAD + "[[case]]\nname='a'\nbias = 'yes'\n" + CASE,
        ("bias: expected true or false",),
    ),
    "passes-string": (
        HEAD + "[[case]]\nname='a'\npasses = 'forward'\n" + CASE,
        ("passes: expected a list",),
    ),
    "passes-unknown": (
        HEAD + "[[case]]\nname='a'\npasses = ['fwd']\n" + CASE,
        ('passes: unknown pass "fwd"',),
    ),
    "passes-twice": (
        HEAD + "[[case]]\nname='a'\npasses = ['forward', 'forward']\n" + CASE,
        ("passes: lists a pass twice",),
    ),
    "case-without-name": (
        HEAD + "[[case]]\nname='a'\n" + CASE + "[[case]]\n" + CASE,
        ("case #2:", "missing required key 'name'"),
    ),
    "case-missing-kernel": (
        HEAD + "[[case]]\nname='a'\nin_channels=1\nout_channels=1\ninput=[4]\n",
        ("case #1 'a'", "missing required key 'kernel'"),
    ),
    "case-missing-keys": (HEAD + "[[case]]\nname='a'\n", ("missing required keys 'in_channels'",)),
    "duplicate-case": (
        HEAD + "[[case]]\nname='g3'\n" + CASE + "[[case]]\nname='g3'\n" + CASE,
        ("case #2 'g3'", "duplicate case name 'g3'", "also case #1 'g3'"),
    ),
    "defaults-not-table": (HEAD + "defaults = 3\n[[case]]\nname='a'\n" + CASE, ("[defaults]",)),
    "defaults-name": (
        HEAD + "[defaults]\nname = 'x'\n[[case]]\nname='a'\n" + CASE,
        ("[defaults]", "name: cannot be a default"),
    ),
    "defaults-unknown": (
        HEAD + "[defaults]\nbatchsize = 2\n[[case]]\nname='a'\n" + CASE,
        ("[defaults]", "unknown key 'batchsize'"),
    ),
    "defaults-wrong-type": (
        HEAD + "[defaults]\nbatch = '2'\n[[case]]\nname='a'\n" + CASE,
        ("[defaults]", "batch: expected an integer"),
    ),
    "sweep-scalar": (
        HEAD + "[[sweep]]\nname='k-s'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\nkernel=4\n",
        ("sweep #1 'k-s'", "sweep key 'kernel' must be a list", "kernel = [4]"),
    ),
    "sweep-empty-list": (
        HEAD + "[[sweep]]\nname='k'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\nkernel=[]\n",
        ("sweep #1 'k'", "sweep key 'kernel' is an empty list"),
    ),
    "sweep-flat-input": (
        HEAD + "[[sweep]]\nname='i'\nin_channels=[1]\nout_channels=[1]\ninput=[4, 4]\nkernel=[1]\n",
        ("sweep #1 'i'", "sweep key 'input' must be a list of per-dimension lists"),
    ),
    "sweep-bad-element": (
        HEAD + "[[sweep]]\nname='k'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[1, 'x']\n",
        ("sweep #1 'k'", "kernel[1]: expected an integer"),
    ),
    "sweep-without-name": (
        HEAD + "[[sweep]]\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\nkernel=[1]\n",
        ("sweep #1:", "missing required key 'name'"),
    ),
    "sweep-unknown-key": (
        HEAD + "[[sweep]]\nname='k'\nstrides=[1]\n",
        ("sweep #1 'k'", "unknown key 'strides'", "did you mean 'stride'"),
    ),
    "template-unknown-field": (
        HEAD + "[[sweep]]\nname='k{kernal}'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[1]\n",
        ("sweep #1 'k{kernal}'", "unknown field {kernal}", "did you mean 'kernel'"),
    ),
    "template-attribute": (
        HEAD + "[[sweep]]\nname='{kernel.__class__}'\nin_channels=[1]\nout_channels=[1]\n"
        "input=[[4]]\nkernel=[1]\n",
        ("unknown field {kernel.__class__}",),
    ),
    "template-index": (
        HEAD + "[[sweep]]\nname='{input[0]}'\nin_channels=[1]\nout_channels=[1]\n"
        "input=[[4]]\nkernel=[1]\n",
        ("unknown field {input[0]}",),
    ),
    "template-positional": (
        HEAD + "[[sweep]]\nname='k{}'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[1]\n",
        ("an empty field {}",),
    ),
    "template-unbalanced": (
        HEAD + "[[sweep]]\nname='k{kernel'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[1]\n",
        ("name: bad template",),
    ),
    "template-bad-spec": (
        HEAD + "[[sweep]]\nname='k{kernel:q}'\nin_channels=[1]\nout_channels=[1]\n"
        "input=[[4]]\nkernel=[1]\n",
        ("name: cannot render template",),
    ),
    "template-nested": (
        HEAD + "[[sweep]]\nname='k{kernel:{batch}}'\nin_channels=[1]\nout_channels=[1]\n"
        "input=[[4]]\nkernel=[1]\n",
        ("nested fields",),
    ),
    "sweep-duplicate-names": (
        HEAD + "[[sweep]]\nname='k{kernel}'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[1]\nstride=[1, 2]\n",
        ("sweep #1 'k{kernel}'", "the case name 'k1' twice", "add {stride}"),
    ),
    "sweep-vs-case-name": (
        HEAD + "[[case]]\nname='k1'\n" + CASE + "[[sweep]]\nname='k{kernel}'\n"
        "in_channels=[1]\nout_channels=[1]\ninput=[[4]]\nkernel=[1]\n",
        ("sweep #1 'k{kernel}'", "duplicate case name 'k1'", "also case #1 'k1'"),
    ),
    "sweep-invalid-problem": (
        HEAD + "[[sweep]]\nname='s{stride}'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        "kernel=[3]\nstride=[4, 2]\noutput_padding=[3]\n",
        ("sweep #1 's{stride}'", "generated case 's2'", "output_padding: must satisfy"),
    ),
    "measure-not-table": (
        HEAD + "measure = 3\n[[case]]\nname='a'\n" + CASE,
        ("[measure]:", "table"),
    ),
    "measure-unknown-key": (
        HEAD + "[measure]\nprecison = 0.05\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: unknown key 'precison'", "did you mean 'precision'"),
    ),
    "measure-precision-range": (
        HEAD + "[measure]\nprecision = \"50\"\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: precision:", '"50" (a string)'),
    ),
    "measure-precision-percent-range": (
        HEAD + "[measure]\nprecision = \"150%\"\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: precision:", "150%"),
    ),
    "measure-budget-zero": (
        HEAD + "[measure]\nbudget = 0\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: budget: must be > 0 seconds",),
    ),
    "measure-budget-string": (
        HEAD + "[measure]\nbudget = \"1s\"\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: budget: must be a number of seconds",),
    ),
    "measure-warmup-negative": (
        HEAD + "[measure]\nwarmup = -1\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: warmup: must be >= 0 seconds",),
    ),
    "measure-warmup-inf": (
        HEAD + "[measure]\nwarmup = inf\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: warmup: must be >= 0 seconds",),
    ),
    "measure-min-samples-bool": (
        HEAD + "[measure]\nmin_samples = true\n[[case]]\nname='a'\n" + CASE,
        ("[measure]: min_samples: must be an integer >= 1",),
    ),
    "sweep-too-big": (
        HEAD + "[[sweep]]\nname='b{batch}'\nin_channels=[1]\nout_channels=[1]\ninput=[[4]]\n"
        f"kernel=[1]\nbatch={list(range(1, 102))}\nstride={list(range(1, 102))}\n",
        ("expands to 10201 cases",),
    ),
}


@pytest.mark.parametrize("label", sorted(BAD_FILES))
def test_bad_suite_file_names_file_entry_and_key(tmp_path: Path, label: str) -> None:
    text, expected = BAD_FILES[label]
    message = load_error(tmp_path, text)
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_measure_table_is_read_in_both_spellings(tmp_path: Path) -> None:
    text = HEAD + "[measure]\nprecision = \"5%\"\nbudget = 2\nwarmup = 0\nmin_samples = 3\n"
    suite = load(tmp_path, text + "[[case]]\nname='a'\n" + CASE)
    assert suite.measure == MeasureRequest(0.05, budget_s=2.0, warmup_s=0.0, min_samples=3)
    fraction = load(tmp_path, HEAD + "[measure]\nprecision = 0.1\n[[case]]\nname='a'\n" + CASE)
    assert fraction.measure == MeasureRequest(precision=0.1)
    assert load(tmp_path, HEAD + "[[case]]\nname='a'\n" + CASE).measure == MeasureRequest()


def test_smoke_asks_for_a_quick_measurement() -> None:
    asked = load_suite("smoke").measure
    assert asked.precision is not None and asked.precision > 0.02
    assert asked.warmup_s is not None and asked.warmup_s < 0.05


def test_unreadable_paths(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        with pytest.raises(InputError, match="cannot read suite file"):
            load_suite(str(path))
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(InputError, match="not UTF-8"):
        load_suite(str(bad))


def test_unknown_suite_name_suggests_and_lists_shipped() -> None:
    with pytest.raises(InputError) as info:
        load_suite("dcgn")
    message = str(info.value)
    assert "unknown suite 'dcgn'" in message and "did you mean 'dcgan'" in message
    assert all(name in message for name in SHIPPED)


def test_a_suite_file_in_the_working_directory_loads_without_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, HEAD + "[[case]]\nname='a'\n" + CASE, name="mine")
    monkeypatch.chdir(tmp_path)
    assert load_suite("mine").name == "t"


# --- --case strings ------------------------------------------------------------------------


@given(problems(dtypes=("float16", "bfloat16", "float32", "float64")))
def test_spec_round_trip(problem: Problem) -> None:
    assert parse_case(problem.spec()).problem == problem


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_spec_and_default_name_round_trip_edge_cases(name: str) -> None:
    problem = EDGE_CASES[name]
    case = parse_case(problem.spec())
    assert case.problem == problem and case.suite == CLI_SUITE
    assert case.passes == PASSES
    # the default name is itself a --case string of the same problem (dtype aside)
    again = parse_case(case.name)
    assert again.problem == replace(problem, dtype="float32")
    assert again.name == case.name


def test_case_defaults_name_and_passes() -> None:
    case = parse_case("in_channels=512, out_channels=256, input=4x4, kernel=4")
    assert case.problem == Problem.create(
        in_channels=512, out_channels=256, input=(4, 4), kernel=4, batch=1
    )
    assert case.name == "in_channels=512,out_channels=256,input=4x4,kernel=4"
    assert case.passes == PASSES
    named = parse_case(
        "name=g2,in_channels=2,out_channels=2,input=5x5x5,kernel=4x2x1,bias=TRUE"
    )
    assert named.name == "g2"
    assert (named.problem.kernel, named.problem.stride, named.problem.bias) == (
        (4, 2, 1),
        (1, 1, 1),
        True,
    )
    assert parse_case("in_channels=1,out_channels=1,input=4,kernel=3").problem.input == (4,)
    for text, passes in (
        ("forward", ("forward",)),
        ("backward", ("backward",)),
        ("backward+forward", PASSES),
        ("all", PASSES),
    ):
        spec = f"in_channels=1,out_channels=1,input=4,kernel=3,passes={text}"
        assert parse_case(spec).passes == passes


def test_case_name_shows_non_default_parameters() -> None:
    case = parse_case(
        "batch=16,in_channels=4,out_channels=2,input=4x6,kernel=3x1,stride=2,padding=1,"
        "output_padding=1x0,bias=true,dtype=float64"
    )
    assert case.name == (
        "batch=16,in_channels=4,out_channels=2,input=4x6,kernel=3x1,stride=2,padding=1,"
        "output_padding=1x0,bias=true"
    )


BAD_CASES: dict[str, tuple[str, ...]] = {
    "in_channels=4,kernel": ("'kernel' is not a key=value pair",),
    "": ("'' is not a key=value pair",),
    "in_channels=4,,kernel=3": ("'' is not a key=value pair",),
    "=4": ("is not a key=value pair",),
    "in_channel=4": ("unknown key 'in_channel'", "did you mean 'in_channels'"),
    "in_channels=4,in_channels=5": ("in_channels: given twice",),
    "in_channels=": ("in_channels: missing value",),
    "in_channels=four": ("in_channels: expected an integer, got 'four'",),
    "kernel=4xx4": ("kernel: expected 1 to 3 integers joined by x (4x4), got '4xx4'",),
    "input=4.5": ("input: expected",),
    "batch=2x2": ("batch: expected an integer, got '2x2'",),
    "bias=yes": ("bias: expected true or false",),
    "passes=fwd": ("passes: unknown pass",),
    "passes=forward+forward": ("passes: lists a pass twice",),
    "in_channels=4,out_channels=4,input=4x4": ("missing required key 'kernel'",),
    "in_channels=4,out_channels=4,input=4x4,kernel=3,stride=2,output_padding=2": (
        "output_padding: must satisfy",
    ),
    "in_channels=4,out_channels=4,input=4x4x4x4,kernel=3": ("input: expected 1 to 3 integers",),
    "in_channels=4,out_channels=4,input=4x4,kernel=3x3x3": ("kernel: has 3 values",),
    "in_channels=4,out_channels=4,input=4x4,kernel=3,dtype=half": ("dtype: must be one of",),
    "in_channels=0,out_channels=4,input=4x4,kernel=3": ("in_channels: must be >= 1",),
}


@pytest.mark.parametrize("spec", sorted(BAD_CASES))
def test_bad_case_string_names_the_pair(spec: str) -> None:
    with pytest.raises(InputError) as info:
        parse_case(spec, index=2)
    message = str(info.value)
    assert message.startswith(f"--case #3 {spec!r}: ") and "\n" not in message
    for fragment in BAD_CASES[spec]:
        assert fragment in message, (fragment, message)


# --- cases_for -----------------------------------------------------------------------------


def test_cases_for_orders_suites_then_cases_and_overrides_dtype() -> None:
    spec = "in_channels=1,out_channels=1,input=4,kernel=3"
    cases = cases_for(["smoke", "dcgan"], [spec], dtype="float64")
    smoke, dcgan = load_suite("smoke"), load_suite("dcgan")
    assert [(c.suite, c.name) for c in cases] == [
        *((c.suite, c.name) for c in smoke.cases + dcgan.cases),
        ("cli", spec),
    ]
    assert {c.problem.dtype for c in cases} == {"float64"}
    assert cases[0].problem.input == smoke.cases[0].problem.input
    kept = cases_for(["dcgan"], [], dtype=None)
    assert [c.problem for c in kept] == [c.problem for c in dcgan.cases]
    assert cases_for([], []) == []


def test_cases_for_loads_a_suite_named_twice_once() -> None:
    shipped = load_suite("dcgan")
    cases = cases_for(["dcgan", str(shipped.path)], [])
    assert len(cases) == len(shipped.cases)


def test_cases_for_refuses_two_files_with_one_suite_name(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "dcgan"\ndescription = "d"\n[[case]]\nname="a"\n' + CASE)
    with pytest.raises(InputError, match="is also the name of the suite in"):
        cases_for(["dcgan", str(path)], [])


def test_cases_for_refuses_the_same_case_twice() -> None:
    spec = "in_channels=1,out_channels=1,input=4,kernel=3"
    with pytest.raises(InputError, match=r"--case #2: the same case as --case #1"):
        cases_for([], [spec, spec.replace(",", ", ")])
    # the same problem in two dtypes is two cases (dtype is part of a row's identity)
    assert len(cases_for([], [spec, spec + ",dtype=float64"])) == 2
    # ... unless --dtype makes them one
    with pytest.raises(InputError, match="the same case"):
        cases_for([], [spec, spec + ",dtype=float64"], dtype="float32")


def test_cases_for_refuses_an_unknown_dtype() -> None:
    with pytest.raises(InputError, match="--dtype: must be one of"):
        cases_for(["smoke"], [], dtype="float8")
