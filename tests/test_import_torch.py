"""``deconvbench import module:attr``: a torch model's transposed convolutions, traced on meta
tensors, as problems and as a suite file.

The models live in tests/fixtures/torch_models.py (``fixtures.torch_models:ATTR``: pytest puts
tests/ on ``sys.path``) or are written into a temporary directory and imported from it as the
working directory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fixtures import torch_models as models
from torch import nn
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.cases.suite_file import load_suite
from deconvbench.errors import InputError
from deconvbench.importers.model import ImportedModel
from deconvbench.importers.read import parse_shape
from deconvbench.importers.suite_text import group
from deconvbench.importers.torch_module import read_module_spec, trace
from deconvbench.problem import Problem

FIXTURES = "fixtures.torch_models"


def read(
    attr: str, *shapes: str, batch: int | None = None, name: str | None = None
) -> ImportedModel:
    return read_module_spec(f"{FIXTURES}:{attr}", [parse_shape(s) for s in shapes], batch, name)


def names(model: ImportedModel) -> list[str]:
    return [layer.name for layer in model.layers]


def problems(model: ImportedModel) -> list[Problem]:
    return [layer.problem for layer in model.problems if layer.problem is not None]


# --- what is found, and how it is named ----------------------------------------------------


def test_the_dcgan_generator_is_the_shipped_dcgan_suite() -> None:
    suite = load_suite("dcgan")
    assert {case.problem.batch for case in suite.cases} == {16}
    model = read("DCGANGenerator", "16x100x1x1")
    assert model.name == "DCGANGenerator"
    assert model.source == f"{FIXTURES}:DCGANGenerator"
    assert problems(model) == [case.problem for case in suite.cases]
    assert names(model) == ["main.0", "main.3", "main.6", "main.9", "main.12"]
    assert model.notes == ()


def test_batch_overrides_every_input_and_is_noted() -> None:
    model = read("dcgan", "1x100x1x1", batch=16, name="gen")
    assert model.name == "gen"  # --name over the factory's name
    assert problems(model) == [case.problem for case in load_suite("dcgan").cases]
    assert model.notes == ("batch set to 16 (--batch)",)
    two = read("Varied", "1x6x7", "1x4x5x6", batch=3)
    assert {p.batch for p in problems(two)} == {3}


def test_nested_modules_are_named_by_path_and_repeats_stay_separate() -> None:
    model = read("Nested", "2x16x5x5")
    assert names(model) == [
        "decoder.up.0", "decoder.up.2", "same.0", "same.1", "same.2", "again", "again#2",
    ]  # fmt: skip
    assert not model.refused
    up0, up2, same = problems(model)[:3]
    assert up0 == Problem.create(
        batch=2, in_channels=16, out_channels=8, input=(5, 5), kernel=4, stride=2, padding=1,
        bias=True,
    )  # fmt: skip
    assert up2 == Problem.create(
        batch=2, in_channels=8, out_channels=8, input=(10, 10), kernel=3, stride=2, padding=1,
        output_padding=1, bias=False,
    )  # fmt: skip
    assert same.input == (20, 20) and same.bias
    groups = group(model.layers)
    assert [[layer.name for layer in g] for g in groups] == [
        ["decoder.up.0"], ["decoder.up.2"], ["same.0", "same.1", "same.2", "again", "again#2"],
    ]  # fmt: skip


def test_functional_calls_are_named_after_the_module_that_makes_them() -> None:
    model = read("Functional", "3x4x10")
    assert names(model) == [
        "block:conv_transpose1d", "block:conv_transpose1d#2", "Functional:conv_transpose1d",
    ]  # fmt: skip
    first, second, root = problems(model)
    assert first == Problem.create(
        batch=3, in_channels=4, out_channels=4, input=(10,), kernel=3, stride=2, padding=1,
        output_padding=1, bias=True,
    )  # fmt: skip
    assert second == Problem.create(
        batch=3, in_channels=4, out_channels=4, input=(20,), kernel=3, padding=1
    )
    assert root == Problem.create(
        batch=3, in_channels=4, out_channels=2, input=(20,), kernel=5, stride=3, padding=2,
        output_padding=2,
    )  # fmt: skip


def test_1d_3d_groups_dilation_output_padding_and_bias() -> None:
    model = read("Varied", "2x6x7", "2x4x5x6")
    assert names(model) == ["one", "dilated", "three"]
    assert problems(model) == [
        Problem.create(
            batch=2, in_channels=6, out_channels=9, input=(7,), kernel=5, stride=3, padding=2,
            output_padding=2, groups=3, bias=True,
        ),
        Problem.create(
            batch=2, in_channels=4, out_channels=6, input=(5, 6), kernel=(3, 2), stride=(2, 1),
            padding=(2, 0), dilation=(3, 2), output_padding=(2, 1), groups=2, bias=False,
        ),
        Problem.create(
            batch=2, in_channels=6, out_channels=4, input=(3, 13, 9), kernel=3, stride=2,
            padding=1, output_padding=1, bias=True,
        ),
    ]  # fmt: skip


def test_a_float64_model_gives_float64_problems() -> None:
    model = read("double_nested", "2x16x5x5")
    assert model.name == "double_nested"
    assert {p.dtype for p in problems(model)} == {"float64"}
    assert len(model.layers) == 7


def test_a_call_with_no_problem_is_kept_with_the_reason() -> None:
    model = read("Refused", "2x4x5x5")
    assert names(model) == ["empty", "Refused:conv_transpose2d", "good"]
    empty, int_call, good = model.layers
    assert empty.problem is None and empty.refused.startswith("batch:")
    assert int_call.problem is None and int_call.refused.startswith("dtype:")
    assert good.problem is not None and good.problem.output == (7, 7)


def test_a_model_that_reads_data_while_built_is_built_on_the_cpu_then_moved() -> None:
    model = read("ReadsData", "1x3x8x8")
    assert [p.stride for p in problems(model)] == [(2, 2)]


# --- shapes: each problem's output is the output the call made -----------------------------


@pytest.mark.parametrize(
    ("make", "shapes"),
    [
        (models.Nested, ["2x16x5x5"]),
        (models.Functional, ["3x4x10"]),
        (models.Varied, ["2x6x7", "2x4x5x6"]),
        (models.UNetDecoder, ["2x1024x4x4"]),
        (models.DCGANGenerator, ["16x100x1x1"]),
    ],
)
def test_each_problem_outputs_the_shape_of_its_call(
    make: type[nn.Module], shapes: list[str]
) -> None:
    with torch.device("meta"):
        model = make()
    inputs = [torch.empty(parse_shape(s), device="meta") for s in shapes]
    calls = trace(model.eval(), inputs, make.__name__)
    assert calls
    for call in calls:
        assert call.layer.problem is not None, call.layer.refused
        assert call.layer.problem.y_shape == call.output, call.layer.name


@pytest.mark.parametrize(
    ("make", "shapes"),
    [(models.Nested, [(2, 16, 5, 5)]), (models.Varied, [(2, 6, 7), (2, 4, 5, 6)])],
)
def test_each_problem_outputs_what_the_module_outputs_on_the_cpu(
    make: type[nn.Module], shapes: list[tuple[int, ...]]
) -> None:
    """The real model, run on real tensors: each ConvTranspose module's output shape."""
    model = make().eval()
    seen: list[tuple[int, ...]] = []
    for module in model.modules():
        if isinstance(module, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            module.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    with torch.no_grad():
        model(*(torch.randn(shape) for shape in shapes))
    imported = read(make.__name__, *("x".join(map(str, s)) for s in shapes))
    assert [p.y_shape for p in problems(imported)] == seen


# --- big models: seconds, no memory -----------------------------------------------------------


def test_a_unet_decoder_of_14_layers_imports_in_seconds() -> None:
    started = time.perf_counter()
    model = read("UNetDecoder", "8x1024x16x16")
    elapsed = time.perf_counter() - started
    print(f"UNetDecoder: {len(model.layers)} layers imported in {elapsed:.3f} s")
    assert len(model.problems) == 14
    assert names(model)[:3] == ["bottleneck", "decoder.0.up", "decoder.0.refine.0"]
    assert problems(model)[-1].y_shape == (8, 2, 1024, 1024)
    assert elapsed < 10


def test_a_model_of_16_gib_imports_without_allocating_it() -> None:
    started = time.perf_counter()
    model = read("Huge", "4x16384x64x64")
    assert problems(model)[0].y_shape == (4, 16384, 128, 128)
    assert time.perf_counter() - started < 10


# --- the working directory -----------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory, a fresh one; the modules imported from it forgotten after."""
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("cwd_"):
            del sys.modules[name]


def test_a_module_in_the_working_directory_imports_and_the_path_is_restored(workdir: Path) -> None:
    package = workdir / "cwd_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gen.py").write_text(
        "import torch.nn as nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.ConvTranspose2d(8, 4, 2, stride=2))\n"
    )
    path = list(sys.path)
    model = read_module_spec("cwd_models.gen:make", [(1, 8, 3, 3)], None, None)
    assert sys.path == path
    assert names(model) == ["0"]
    assert model.name == "make"
    with pytest.raises(InputError, match="cannot import 'cwd_missing'"):
        read_module_spec("cwd_missing:make", [(1, 8, 3, 3)], None, None)


def test_a_model_that_is_itself_a_transposed_convolution_is_named_by_the_model(
    workdir: Path,
) -> None:
    (workdir / "cwd_single.py").write_text(
        "import torch.nn as nn\ndef up():\n    return nn.ConvTranspose3d(2, 2, 2, stride=2)\n"
    )
    model = read_module_spec("cwd_single:up", [(1, 2, 2, 2, 2)], None, "single")
    assert names(model) == ["single"]


# --- the command: a suite file, and bad input --------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["import", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_command_writes_a_suite_that_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "nested.toml"
    code, _, err = invoke(f"{FIXTURES}:Nested", "--input", "2x16x5x5", "-o", str(path))
    assert code == 0, err
    assert "imported 7 transposed convolutions (3 distinct problems)" in err
    suite = load_suite(str(path))
    model = read("Nested", "2x16x5x5")
    assert suite.name == "Nested"
    assert [case.problem for case in suite.cases] == list(dict.fromkeys(problems(model)))
    assert [case.count for case in suite.cases] == [1, 1, 5]
    assert [case.layers for case in suite.cases] == [
        ("decoder.up.0",), ("decoder.up.2",), ("same.0", "same.1", "same.2", "again", "again#2"),
    ]  # fmt: skip


def test_the_command_prints_the_dcgan_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = invoke(f"{FIXTURES}:dcgan", "--input", "1x100x1x1", "--batch", "16")
    assert code == 0, err
    assert "batch set to 16 (--batch)" in out and "batch set to 16 (--batch)" in err
    assert out.count("[[case]]") == 5 and "count = 1" in out


BROKEN = "import torch\nclass Net(torch.nn.Module:\n    pass\n"

BAD = [
    # (spec, arguments, words the one line names)
    ("cwd_nowhere.deeper:Net", ["--input", "1x3x4x4"], ["cannot import 'cwd_nowhere.deeper'",
     "ModuleNotFoundError"]),
    ("cwd_broken:Net", ["--input", "1x3x4x4"], ["cannot import 'cwd_broken'", "SyntaxError"]),
    (f"{FIXTURES}:Missing", ["--input", "1x3x4x4"], ["has no attribute 'Missing'"]),
    (f"{FIXTURES}:NotAModule", ["--input", "1x3x4x4"], ["NotAModule, not an nn.Module"]),
    (f"{FIXTURES}:not_a_module", ["--input", "1x3x4x4"], ["returned a NotAModule"]),
    (f"{FIXTURES}:NUMBER", ["--input", "1x3x4x4"], ["type int, not an nn.Module"]),
    (f"{FIXTURES}:INSTANCE", ["--input", "1x3x4x4"], ["nn.Module instance"]),
    (f"{FIXTURES}:NeedsArguments", ["--input", "1x3x4x4"], ["construction failed: TypeError"]),
    (f"{FIXTURES}:keras_model", ["--input", "1x3x4x4"], ["Keras", ".keras files"]),
    (f"{FIXTURES}:Raises", ["--input", "1x3x4x4"],
     ["forward failed: ValueError: this model refuses", "--input 1x3x4x4"]),
    (f"{FIXTURES}:DCGANGenerator", ["--input", "16x100"],
     ["forward failed: RuntimeError", "--input 16x100"]),
    (f"{FIXTURES}:DCGANGenerator", ["--input", "16x100x1x1", "--input", "16x100x1x1"],
     ["forward failed: TypeError", "--input 16x100x1x1 --input 16x100x1x1"]),
    (f"{FIXTURES}:DCGANGenerator", [], ["--input"]),
    (f"{FIXTURES}:ReadsDataInForward", ["--input", "1x3x4x4"], ["forward failed", "meta"]),
    (f"{FIXTURES}:NoTransposed", ["--input", "1x3x4x4"], ["no transposed convolution found"]),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "args", "words"), BAD, ids=[f"{s} {a}" for s, a, _ in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    spec: str, args: list[str], words: list[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    (workdir / "cwd_broken.py").write_text(BROKEN)
    output = workdir / "out" / "suite.toml"
    code, out, err = invoke(spec, *args, "-o", str(output))
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deconvbench: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not output.exists() and not output.parent.exists()
