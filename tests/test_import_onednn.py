"""``deconvbench import`` of oneDNN verbose logs and benchdnn batch files.

tests/fixtures/onednn/torch_cpu.log is a real capture (torch on CPU, ``ONEDNN_VERBOSE=1``,
made by capture.py there); torch_cpu.json next to it records each layer's torch parameters,
its output shape and whether torch ran it through oneDNN. decoder.batch is hand-written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.cases.suite_file import load_suite
from deconvbench.errors import InputError
from deconvbench.importers.model import ImportedLayer, ImportedModel
from deconvbench.importers.onednn_log import (
    Descriptor,
    DescriptorError,
    parse_descriptor,
    read_onednn,
    to_problem,
)
from deconvbench.importers.read import read_model
from deconvbench.problem import Problem

FIXTURES = Path(__file__).parent / "fixtures" / "onednn"
LOG = FIXTURES / "torch_cpu.log"
BATCH = FIXTURES / "decoder.batch"
TORCH: list[dict[str, Any]] = json.loads((FIXTURES / "torch_cpu.json").read_text())["layers"]


def torch_problem(layer: dict[str, Any]) -> Problem:
    keys = {"batch", "in_channels", "out_channels", "input", "kernel", "stride", "padding",
            "output_padding", "dilation", "groups", "bias", "dtype"}  # fmt: skip
    return Problem.create(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in layer.items() if k in keys})  # fmt: skip


def imported(model: ImportedModel) -> dict[tuple[Problem | None, str], ImportedLayer]:
    found = {(layer.problem, layer.passes[0]): layer for layer in model.layers}
    assert len(found) == len(model.layers), "one layer per distinct problem and pass"
    return found


def write(tmp_path: Path, text: str, name: str = "log.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the committed torch capture ----------------------------------------------------------


def test_torch_log_imports_each_layer_that_reached_onednn_with_its_passes_and_counts() -> None:
    model = read_onednn(LOG, None)
    assert model.name == "torch_cpu" and model.source == str(LOG)
    layers = imported(model)
    reached = [layer for layer in TORCH if layer["onednn"]]
    assert len(layers) == 2 * len(reached) and not model.refused
    for layer in reached:
        problem = torch_problem(layer)
        assert (layer["batch"], layer["out_channels"], *problem.output) == tuple(
            layer["output_shape"]
        ), layer["name"]
        for pass_ in ("forward", "backward"):
            found = layers[problem, pass_]  # the same problem as torch's, bias included
            assert found.count == layer[pass_], (layer["name"], pass_)
            assert not found.shifted
    assert {layer.name for layer in model.layers} >= {"line 10", "line 14", "line 19"}


def test_torch_log_leaves_out_what_torch_kept_off_onednn() -> None:
    problems = {layer.problem for layer in read_onednn(LOG, None).layers}
    for layer in TORCH:
        assert (torch_problem(layer) in problems) == layer["onednn"], layer["name"]
    assert {layer["name"] for layer in TORCH if not layer["onednn"]} == {"tiny", "double"}


def test_torch_log_reads_conv_transpose1d_as_1d_and_says_so() -> None:
    model = read_onednn(LOG, "decoder")
    assert model.name == "decoder"
    assert sorted({layer.problem.ndim for layer in model.problems if layer.problem}) == [1, 2, 3]
    assert any("read as 1-D" in note for note in model.notes)
    text = LOG.read_text()
    assert "ih1oh1kh1sh1dh0ph0_iw10ow20kw4sw2dw0pw1" in text  # what oneDNN saw


# --- verbose lines of every version ------------------------------------------------------

DESC = "mb2_ic8oc8_ih7oh14kh3sh2dh0ph1_iw7ow14kw3sw2dw0pw1"
V3 = "src:f32:a:blocked:acdb::f0 wei:f32:a:blocked:Acdb16a::f0 bia:f32:a:blocked:a::f0 " \
     "dst:f32:a:blocked:acdb::f0"  # fmt: skip
V2 = "src_f32::blocked:abcd:f0 wei_f32::blocked:abcd:f0 bia_f32::blocked:a:f0 " \
     "dst_f32::blocked:abcd:f0"  # fmt: skip
VERSIONS = {
    "v3": f"onednn_verbose,v1,primitive,exec,cpu,deconvolution,brg:avx512_core,"
          f"forward_training,{V3},attr-scratchpad:user,alg:deconvolution_direct,{DESC},0.5",
    "v3 timestamp": f"onednn_verbose,v1,1712345678901.25,primitive,exec,cpu,deconvolution,"
                    f"jit:avx2,forward_training,{V3},,alg:deconvolution_direct,{DESC},0.5",
    "v3.0": f"onednn_verbose,exec,cpu,deconvolution,jit:avx2,forward_training,{V3},,"
            f"alg:deconvolution_direct,{DESC},0.5",
    "v2": f"dnnl_verbose,exec,cpu,deconvolution,jit:avx2,forward_training,{V2},,"
          f"alg:deconvolution_direct,{DESC},0.5",
    "mkldnn 0.x": "mkldnn_verbose,exec,deconvolution,jit:avx2,forward_training,fsrc:nchw "
                  "fwei:oihw fbia:x fdst:nchw,alg:deconvolution_direct,"
                  "mb2_g1ic8oc8_ih7oh14kh3sh2dh0ph1_iw7ow14kw3sw2dw0pw1,0.5",
    "after program output": f"epoch 1 loss 0.25 onednn_verbose,v1,primitive,exec,cpu,"
                            f"deconvolution,brg,forward_inference,{V3},,,{DESC},0.5",
}  # fmt: skip
EXPECTED = Problem.create(batch=2, in_channels=8, out_channels=8, input=(7, 7), kernel=3,
                          stride=2, padding=1, output_padding=1, bias=True)  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_each_versions_layout_gives_the_same_problem(tmp_path: Path, version: str) -> None:
    create = VERSIONS[version].replace(",exec,", ",create:cache_miss,")
    path = write(tmp_path, f"{create}\n{VERSIONS[version]}\n{VERSIONS[version]}\n")
    [layer] = read_onednn(path, None).layers
    got = (layer.problem, layer.passes, layer.count, layer.name)
    assert got == (EXPECTED, ("forward",), 2, "line 2")


def verbose(kind: str, bias: bool = True, dt: str = "f32", desc: str = DESC) -> str:
    bia = f"bia:{dt}:a:blocked:a::f0" if bias else "bia:undef::undef:::"
    return (f"onednn_verbose,v1,primitive,exec,cpu,deconvolution,jit,{kind},src:{dt}:a:"
            f"blocked:abcd::f0 wei:{dt}::blocked:abcd::f0 {bia} dst:{dt}::blocked:abcd::f0"
            f",,alg:deconvolution_direct,{desc},0.1\n")  # fmt: skip


def test_backward_data_and_weights_pair_into_backward_passes(tmp_path: Path) -> None:
    """Each backward_weights is a backward pass with its bias; backward_data beyond them
    (a frozen layer's) are passes without bias."""
    lines = [verbose("backward_data", False), verbose("backward_weights")] * 2 + [
        verbose("backward_data", False), verbose("forward_training")]  # fmt: skip
    layers = imported(read_onednn(write(tmp_path, "".join(lines)), None))
    no_bias = Problem.create(**{**EXPECTED.__dict__, "bias": False})
    assert {k: (v.count, v.name) for k, v in layers.items()} == {
        (EXPECTED, "backward"): (2, "line 1"),
        (no_bias, "backward"): (1, "line 5"),
        (EXPECTED, "forward"): (1, "line 6"),
    }


def test_data_types_and_refused_lines(tmp_path: Path) -> None:
    lines = [verbose("forward_training", dt=dt) for dt in ("bf16", "f16", "f64", "u8")]
    no_torch = "mb2_ic8oc8_ih5oh5kh2sh1dh0ph0_iw5ow5kw2sw1dw0pw0"
    lines.append(verbose("forward_training", desc=no_torch))
    model = read_onednn(write(tmp_path, "".join(lines)), None)
    assert [layer.problem.dtype for layer in model.problems if layer.problem] == [
        "bfloat16", "float16", "float64"]  # fmt: skip
    assert [(layer.name, layer.refused.split(" (")[0]) for layer in model.refused] == [
        ("line 4", "data type u8 has no deconvbench dtype"),
        ("line 5", "height: an output of 5 positions from input 5, kernel 2, stride 1, "
                   "dilation 1 has no torch padding"),
    ]  # fmt: skip


def test_no_deconvolution_is_a_model_without_layers(tmp_path: Path) -> None:
    text = (VERSIONS["v3"].replace("deconvolution", "convolution") + "\n"
            + VERSIONS["v3"].replace(",exec,", ",create:cache_hit,") + "\nhello\n")  # fmt: skip
    assert read_onednn(write(tmp_path, text), None).layers == ()
    assert read_onednn(write(tmp_path, ""), None).layers == ()


# --- descriptors ------------------------------------------------------------------------------


def desc(groups: int, batch: int, ic: int, oc: int, *spatial: tuple[int, ...]) -> Descriptor:
    i, o, k, s, p, d = (tuple(v) for v in zip(*spatial, strict=True))
    return Descriptor(groups, batch, ic, oc, i, o, k, s, p, d)


@pytest.mark.parametrize(
    "text, want",
    [
        ("mb4_ic16oc8_ih7oh14kh3sh2dh0ph1_iw7ow14kw3sw2dw0pw1",
         desc(1, 4, 16, 8, (7, 14, 3, 2, 1, 0), (7, 14, 3, 2, 1, 0))),
        ("mb1_ic3oc8_ih5oh10kh3sh2ph1",  # no w entries: square
         desc(1, 1, 3, 8, (5, 10, 3, 2, 1, 0), (5, 10, 3, 2, 1, 0))),
        ("ic3iw9oc8kw4sw2",  # 1-D; mb 2, no padding: the output follows
         desc(1, 2, 3, 8, (9, 20, 4, 2, 0, 0))),
        ("g4ic8id3oc8kd3sd2pd1",  # depth only: a cube
         desc(4, 2, 8, 8, *[(3, 5, 3, 2, 1, 0)] * 3)),
        ("mb2_g2ic8oc4_id3od6kd3sd2dd0pd1_ih4oh8kh3sh2dh0ph1_iw5ow7kw3sw1dw1pw1",  # v2's order
         desc(2, 2, 8, 4, (3, 6, 3, 2, 1, 0), (4, 8, 3, 2, 1, 0), (5, 7, 3, 1, 1, 1))),
        ("ic2ih6oc2oh6kh3dh1_iw5kw2",  # dilation 1 (torch's 2); no padding: derived
         desc(1, 2, 2, 2, (6, 6, 3, 1, 2, 1), (5, 6, 2, 1, 0, 0))),
        ("ic3ih7oh16kh3sh2oc8",  # derived padding rounds toward zero: -1/2 → 0
         desc(1, 2, 3, 8, *[(7, 16, 3, 2, 0, 0)] * 2)),
        ('ic3ih5oc3kh3_n"dec:up1"', desc(1, 2, 3, 3, *[(5, 7, 3, 1, 0, 0)] * 2)),
    ],
)  # fmt: skip
def test_descriptor_rules(text: str, want: Descriptor) -> None:
    got = parse_descriptor(text)
    assert got == Descriptor(**{**want.__dict__, "name": got.name})
    assert got.name == ("dec:up1" if "_n" in text else "")


@pytest.mark.parametrize(
    "text, words",
    [
        ("ic3oc8", "no spatial entries"),
        ("ic3id4ih4oc8kd3kh3", "give both h and w"),
        ("mb2_ic3oc3_ih5", "ih and kh must be given"),
        ("ic3ih5oc8kh3_xx1", "unrecognised entry 'xx1'"),
        ("ic0ih5oc8kh3", "ic must be at least 1"),
        ("ih5oc8kh3", "ic and oc must be given"),
        ("ic3ih2oc8kh1sh1ph3", "oh works out to -4"),
    ],
)  # fmt: skip
def test_bad_descriptors(text: str, words: str) -> None:
    with pytest.raises(DescriptorError, match=words):
        parse_descriptor(text)


@pytest.mark.parametrize(
    "text, padding, output_padding, dilation, shifted",
    [
        ("ic2ih7oh14kh3sh2ph1", 1, 1, 1, False),  # ends 0 short: torch's output_padding
        ("ic2ih7oh14kh3sh2ph0", 1, 1, 1, True),  # crops 0 at the start, 1 at the end
        ("ic2ih7oh15kh3sh2ph0", 0, 0, 1, False),
        ("ic2ih7oh16kh3sh2", 0, 1, 1, False),  # derived: end padding -1
        ("ic2ih6oh6kh3sh1dh1ph2", 2, 0, 2, False),
    ],
)  # fmt: skip
def test_torch_problem_of_a_descriptor(text: str, padding: int, output_padding: int,
                                       dilation: int, shifted: bool) -> None:  # fmt: skip
    d = parse_descriptor(text.replace("ic2", "ic2oc4"))
    problem, got_shifted = to_problem(d, False, "float32")
    assert (problem.padding[0], problem.output_padding[0], problem.dilation[0]) == (
        padding, output_padding, dilation)  # fmt: skip
    assert got_shifted == shifted
    assert problem.output == d.output


# --- benchdnn -------------------------------------------------------------------------------


def test_batch_file_options_directions_and_counts() -> None:
    model = read_onednn(BATCH, None)
    up1 = Problem.create(batch=4, in_channels=16, out_channels=8, input=(7, 7), kernel=3,
                         stride=2, padding=1, output_padding=1, bias=True)  # fmt: skip
    up2 = Problem.create(batch=2, in_channels=8, out_channels=8, input=(14, 14), kernel=4,
                         stride=2, padding=1, groups=2)  # fmt: skip
    one_d = Problem.create(batch=8, in_channels=8, out_channels=16, input=(10,), kernel=4,
                           stride=2, padding=1, bias=True, dtype="bfloat16")  # fmt: skip
    assert [(x.name, x.problem, x.passes, x.count) for x in model.layers] == [
        ("line 8 (up1)", up1, ("forward",), 2),
        ("line 13 (up2)", up2, ("forward",), 1),
        ("line 13 (up2)", up2, ("backward",), 1),
        ("line 16", one_d, ("backward",), 1),
    ]
    assert model.name == "decoder" and not model.notes


def test_benchdnn_command_lines_and_included_batch_files(tmp_path: Path) -> None:
    write(tmp_path, "# shapes\nic8ih1oh1kh1iw10ow20kw4sw2pw1oc16\n--dt=f16\n", "shapes_1d")
    path = write(tmp_path, "./benchdnn --mode=P --deconv --dir=BWD_W \\\n"
                 "  --mb=0,3 --batch=shapes_1d\nic8ih3oc8kh3\n")  # fmt: skip
    layers = read_onednn(path, None).layers
    assert [(x.name, x.problem and x.problem.batch, x.problem and x.problem.input)
            for x in layers] == [("shapes_1d line 2", 2, (1, 10)),
                                 ("shapes_1d line 2", 3, (1, 10)),
                                 ("line 3", 2, (3, 3)), ("line 3", 3, (3, 3))]  # fmt: skip
    assert [x.problem.dtype for x in layers if x.problem] == ["float32"] * 2 + ["float16"] * 2
    assert not any(x.problem.bias for x in layers if x.problem)  # BWD_W: no bias


@pytest.mark.parametrize(
    "text, words",
    [
        ("--deconv --dir=FWD_X ic3ih5oc3kh3\n", "line 1: --dir=FWD_X: not one of FWD_B"),
        ("--deconv --mb=two\n", "line 1: --mb=two: expected whole numbers"),
        ("--deconv\n--batch=missing\n", "line 2: --batch=missing: no such file"),
        ("--deconv --batch=log.txt\n", "in a loop"),
    ],
)  # fmt: skip
def test_bad_batch_files(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(InputError, match=words):
        read_onednn(write(tmp_path, text), None)


# --- through the command line ------------------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("source", [LOG, BATCH])
def test_import_writes_a_suite_that_reads_back(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "suite.toml"
    code, _, stderr = invoke("import", str(source), "-o", str(out))
    assert code == 0, stderr
    model = read_model(str(source))
    suite = load_suite(str(out))
    assert suite.name == source.stem
    assert [(c.problem, c.passes, c.count, c.layers) for c in suite.cases] == [
        (x.problem, x.passes, x.count, (x.name,)) for x in model.layers]  # fmt: skip
    assert sum(c.count or 0 for c in suite.cases) == (28 if source == LOG else 5)


@pytest.mark.parametrize("what", ["binary", "empty", "none", "directory"])
def test_bad_files_exit_2_with_one_line_and_no_file(tmp_path: Path, what: str) -> None:
    path = tmp_path / "run.log"
    words = "no transposed convolution found"
    if what == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00" + bytes(range(256)))
        words = "not a oneDNN verbose log or benchdnn batch file (binary data on line 1)"
    elif what == "empty":
        path.write_text("")
    elif what == "none":
        path.write_text(VERSIONS["v3"].replace("deconvolution", "convolution") + "\n")
    else:
        path = tmp_path
        words = "no such file"
    out = tmp_path / "out.toml"
    code, stdout, stderr = invoke("import", str(path), "-o", str(out))
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deconvbench: error: "), stderr
    assert f"{path}: {words}" in lines[0]
    assert not out.exists() and stdout == ""


def test_an_unreadable_file_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "--deconv ic3ih5oc3kh3\n")

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InputError) as error:
        read_onednn(path, None)
    assert str(error.value) == (
        f"{path}: not a oneDNN verbose log or benchdnn batch file (Permission denied)"
    )
