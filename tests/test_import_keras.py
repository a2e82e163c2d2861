"""``deconvbench import`` of Keras 3 ``.keras`` files (deconvbench/importers/keras_file.py).

The fixtures under tests/fixtures/keras/ are real Keras files made by make_fixtures.py there,
which also wrote expected.json: each transposed layer's input and output shapes as Keras
computes them, and where Keras's output window starts inside torch's full output, found from
the numbers. These tests need no Keras; the one that runs Keras is skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.cases.suite_file import load_suite
from deconvbench.errors import InputError
from deconvbench.importers.keras_file import read_keras
from deconvbench.importers.model import ImportedLayer, ImportedModel
from deconvbench.importers.suite_text import SHIFTED
from deconvbench.problem import Problem

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())["files"]


def seed_case(name: str) -> Problem:
    return next(case.problem for case in load_suite("seed").cases if case.name == name)


def by_name(model: ImportedModel, name: str) -> list[ImportedLayer]:
    return [layer for layer in model.layers if layer.name == name]


# --- the fixtures, against what Keras computed ------------------------------------------


def test_the_seed_model_imports_to_the_seed_suites_k3_problem() -> None:
    model = read_keras(FIXTURES / "seed.keras", None, None)
    assert model.name == "seed"
    assert model.source == str(FIXTURES / "seed.keras")
    [layer] = model.layers
    assert layer.name == "deconv"
    assert layer.problem == seed_case("k3-b1")
    assert layer.shifted  # 'same', k3, s2: Keras crops 0 at the start and 1 at the end
    assert model.notes == ("the Keras model's batch is dynamic: set to 1 (--batch)",)
    at_32 = read_keras(FIXTURES / "seed.keras", 32, None)
    assert at_32.layers[0].problem == seed_case("k3-b32")
    assert at_32.notes == ("the Keras model's batch is dynamic: set to 32 (--batch)",)


@pytest.mark.parametrize("file", sorted(EXPECTED))
def test_every_problem_has_the_output_shape_and_window_keras_computes(file: str) -> None:
    model = read_keras(FIXTURES / file, None, None)
    assert model.name == EXPECTED[file]["model"]
    seen = []
    for entry in EXPECTED[file]["layers"]:
        layers = by_name(model, entry["name"])
        assert layers, entry["name"]
        if entry["shifted"] is None:  # torch has no padding for it: refused, with the reason
            assert all(layer.problem is None for layer in layers)
            assert "no torch padding" in layers[0].refused
            seen += layers
            continue
        nchw = entry["input_nchw"]
        [layer] = [x for x in layers if x.problem and list(x.problem.x_shape) == nchw]
        assert layer.problem is not None
        assert list(layer.problem.y_shape) == entry["output_nchw"], entry["name"]
        begin = entry["begin"]  # measured: where Keras's window starts in torch's full output
        assert all(abs(p - b) <= 1 for p, b in zip(layer.problem.padding, begin, strict=True))
        assert layer.shifted == (list(layer.problem.padding) != begin), entry["name"]
        seen.append(layer)
    assert sorted(map(id, seen)) == sorted(map(id, model.layers))  # nothing more was found


def test_same_with_stride_1_and_an_even_kernel_is_refused() -> None:
    model = read_keras(FIXTURES / "sweep.keras", None, None)
    assert {layer.name for layer in model.refused} == {"same_s1_k2", "same_s1_k4"}
    assert len(model.problems) == 24
    [k4] = by_name(model, "same_s1_k4")
    assert k4.refused.startswith("padding 'same' in spatial dimension 0: an output of 5 positions")


def test_the_options_of_a_layer_become_the_problems() -> None:
    model = read_keras(FIXTURES / "options.keras", None, None)
    problems = {layer.name: layer.problem for layer in model.layers}
    assert all(problems.values())
    dtypes = {name: p.dtype for name, p in problems.items() if p}
    assert dtypes.pop("float64") == "float64"
    assert dtypes.pop("mixed_float16") == "float16"  # the policy's compute dtype
    assert dtypes.pop("bfloat16") == "bfloat16"
    assert set(dtypes.values()) == {"float32"}
    assert {name for name, p in problems.items() if p and not p.bias} == {"no_bias"}
    same_op01 = problems["same_op01"]
    assert same_op01 and same_op01.output == (10, 11)
    dilated = problems["dilated_same"]
    assert dilated and (dilated.dilation, dilated.padding) == ((2, 3), (2, 3))
    cf = problems["cf"]  # channels_first: (N, C, H, W) already
    assert cf and cf.x_shape == (1, 4, 6, 5) and cf.out_channels == 3


def test_nested_models_name_their_layers_outer_slash_inner() -> None:
    model = read_keras(FIXTURES / "dims.keras", None, None)
    names = {layer.name: layer.problem.ndim for layer in model.layers if layer.problem}
    assert names == {"decoder/up1d": 1, "decoder/up1d_same": 1, "up3d": 3, "up3d_valid": 3}


def test_a_shared_layer_gives_one_problem_per_input_shape_with_its_calls() -> None:
    model = read_keras(FIXTURES / "shared.keras", None, None)
    found = {(x.problem.input if x.problem else None, x.count) for x in model.layers}
    assert found == {((4, 4), 2), ((6, 5), 1)}


def test_without_build_configs_shapes_are_inferred_through_the_model() -> None:
    with zipfile.ZipFile(FIXTURES / "inferred.keras") as archive:
        assert b"build_config" not in archive.read("config.json")
    model = read_keras(FIXTURES / "inferred.keras", None, None)
    inputs = {layer.name: layer.problem.x_shape for layer in model.layers if layer.problem}
    assert inputs == {"deconv_a": (1, 4, 6, 6), "deconv_b": (1, 4, 12, 12),
                      "deconv_c": (1, 1, 4, 4)}  # fmt: skip


# --- configs written by hand ------------------------------------------------------------


def deconv(name: str = "t", shape: list[int | None] | None = None, **config: Any) -> dict[str, Any]:
    """A serialized Conv2DTranspose as Keras 3 writes it; ``shape`` its build_config's."""
    entry: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": "Conv2DTranspose",
        "config": {
            "name": name, "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
            "padding": "same", "output_padding": None, "data_format": "channels_last",
            "dilation_rate": [1, 1], "use_bias": True,
            "dtype": {"module": "keras", "class_name": "DTypePolicy",
                      "config": {"name": "float32"}, "registered_name": None},
            **config,
        },
        "registered_name": None,
    }  # fmt: skip
    if shape is not None:
        entry["build_config"] = {"input_shape": shape}
    return entry


def sequential(*layers: dict[str, Any], name: str | None = "hand") -> dict[str, Any]:
    config: dict[str, Any] = {"layers": list(layers)}
    if name is not None:
        config["name"] = name
    return {"module": "keras", "class_name": "Sequential", "config": config}


def write(path: Path, config: object, raw: bytes | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        archive.writestr("config.json", raw if raw is not None else json.dumps(config))
        archive.writestr("model.weights.h5", b"")
    return path


def test_registered_names_fixed_batches_and_model_names(tmp_path: Path) -> None:
    layer = deconv(shape=[4, 8, 8, 3])
    layer["class_name"] = "keras.layers>Conv2DTranspose"
    model = read_keras(write(tmp_path / "m.keras", sequential(layer)), None, None)
    assert model.name == "hand" and model.notes == ()  # the batch 4 is the model's own
    assert model.layers[0].problem == Problem.create(
        batch=4, in_channels=3, out_channels=4, input=(8, 8), kernel=3, stride=2, padding=1,
        output_padding=1, bias=True,
    )  # fmt: skip
    unnamed = write(tmp_path / "stem.keras", sequential(deconv(shape=[None, 8, 8, 3]), name=None))
    assert read_keras(unnamed, None, None).name == "stem"
    assert read_keras(unnamed, None, "mine").name == "mine"


@pytest.mark.parametrize(
    ("layers", "reason"),
    [
        ([deconv(shape=[None, None, None, 3])], "input shape (None, None, None, 3) has dynamic"),
        ([{"class_name": "Mystery", "config": {"name": "m"}}, deconv()], "input shape is unknown"),
        ([deconv(shape=[None, 8, 8, 3], padding="full")], "padding: expected valid or same"),
        ([deconv(shape=[None, 8, 8, 3], dtype="int8_from_float32")], "dtype policy 'int8_from"),
        ([deconv(shape=[None, 8, 3])], "doesn't have 4 dimensions"),
        ([deconv(shape=[None, 8, 8, 3], groups=3)], "groups: must divide out_channels"),
        ([{"class_name": "TimeDistributed", "config": {"name": "td", "layer": deconv()}}],
         "a Conv2DTranspose inside a TimeDistributed"),
    ],
)  # fmt: skip
def test_layers_without_a_problem_are_refused_with_the_reason(
    tmp_path: Path, layers: list[dict[str, Any]], reason: str
) -> None:
    model = read_keras(write(tmp_path / "m.keras", sequential(*layers)), None, None)
    [refused] = model.refused
    assert reason in refused.refused, refused.refused
    assert refused.name in ("t", "td/t")


def test_shapes_are_inferred_through_known_layers(tmp_path: Path) -> None:
    layers = [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 9, 9, 2], "name": "in"}},
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 5, "kernel_size": [3, 3],
                                            "strides": [2, 2], "padding": "valid"}},
        {"class_name": "UpSampling2D", "config": {"name": "u", "size": [2, 3]}},
        deconv(padding="valid", output_padding=[1, 0]),
    ]  # fmt: skip
    model = read_keras(write(tmp_path / "m.keras", sequential(*layers)), None, None)
    problem = model.layers[0].problem
    assert problem and problem.x_shape == (1, 5, 8, 12) and problem.output == (18, 25)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"plain text, not a zip", "not a zip archive"),
        (None, "no config.json in the archive"),
        (b"{broken", "config.json: Expecting property name"),
        (b"[1, 2]", "config.json is not a serialized model"),
    ],
)
def test_a_file_that_is_not_a_keras_file_is_bad_input(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    path = tmp_path / "bad.keras"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("metadata.json", "{}")
    elif content.startswith(b"plain"):
        path.write_bytes(content)
    else:
        write(path, None, raw=content)
    with pytest.raises(InputError) as error:
        read_keras(path, None, None)
    assert str(error.value).startswith(f"{path}: not a Keras 3 .keras file ({reason}")
    assert "\n" not in str(error.value)
    runner = CliRunner()
    out = tmp_path / "out.toml"
    result = runner.invoke(cli.app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deconvbench: error: "), result.stderr
    assert reason in lines[0]
    assert not out.exists()


# --- through the command line -----------------------------------------------------------


def test_the_command_writes_a_suite_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "seed.toml"
    result = CliRunner().invoke(cli.app, ["import", str(FIXTURES / "seed.keras"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    suite = load_suite(str(out))
    [case] = suite.cases
    assert case.problem == seed_case("k3-b1")
    assert (case.count, case.layers) == (1, ("deconv",))
    assert SHIFTED in out.read_text()
    assert "batch is dynamic: set to 1" in result.stderr


def test_the_command_lists_the_refused_layers(tmp_path: Path) -> None:
    out = tmp_path / "sweep.toml"
    args = ["import", str(FIXTURES / "sweep.keras"), "-o", str(out), "--batch", "8"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    suite = load_suite(str(out))
    assert {case.problem.batch for case in suite.cases} == {8}
    assert sum(case.count or 0 for case in suite.cases) == 24
    text = out.read_text()
    assert "# left out: same_s1_k2: padding 'same'" in text
    assert "left out same_s1_k4" in result.stderr


# --- with Keras itself (skipped without it) ---------------------------------------------


def test_keras_output_equals_torchs_with_the_imported_padding() -> None:
    """The fixtures' numeric check, rerun where Keras is installed."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras", reason="keras is not installed (make_fixtures.py needs it)")
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec and spec.loader
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    import numpy as np

    rng = np.random.default_rng(1)
    model = make.options()
    imported = read_keras(FIXTURES / "options.keras", None, None)
    for name, layer in make.transposed_layers(model):
        [shape] = make.call_shapes(layer)
        run = make.to_torch(layer, rng, shape)
        rank = len(layer.kernel_size)
        begin = make.find_begin(run, rank)
        [found] = by_name(imported, name)
        assert found.problem is not None
        assert found.shifted == (list(found.problem.padding) != begin)
        assert make.check(run, rank, found.problem, begin) < 1e-9, name
