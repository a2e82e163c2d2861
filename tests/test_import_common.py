"""What every importer shares: padding as torch's, the suite an import writes, the suite keys
``count`` and ``layers``, the ``count`` column and the model totals."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.functional import conv_transpose1d
from typer.testing import CliRunner

from deconvbench import cli
from deconvbench.analysis.model_totals import MIX, model_totals
from deconvbench.cases.case_spec import parse_case
from deconvbench.cases.suite_file import load_suite
from deconvbench.errors import InputError
from deconvbench.importers.model import ImportedLayer, ImportedModel
from deconvbench.importers.padding import NoTorchPadding, full_size, torch_padding
from deconvbench.importers.read import parse_shape, read_model
from deconvbench.importers.suite_text import suite_text
from deconvbench.problem import Problem

from helpers import row


def source_output(x: np.ndarray, w: np.ndarray, stride: int, dilation: int, begin: int,
                  size: int) -> np.ndarray:  # fmt: skip
    """A 1-D transposed convolution as a source computes it: the full output, cropped from
    ``begin`` for ``size`` positions (zeros past the full output's end)."""
    full = conv_transpose1d(torch.from_numpy(x), torch.from_numpy(w), stride=stride,
                              dilation=dilation).numpy()  # fmt: skip
    padded = np.concatenate([full, np.zeros((*full.shape[:2], size + begin))], axis=2)
    return padded[:, :, begin : begin + size]


@pytest.mark.parametrize(
    "i, k, s, d", [(5, 3, 2, 1), (4, 4, 2, 1), (6, 3, 1, 2), (3, 5, 3, 1), (7, 2, 1, 1)]
)
def test_torch_padding_gives_the_sources_output_or_its_shift_by_one(
    i: int, k: int, s: int, d: int
) -> None:
    """Every crop a source may make (begin, size), against torch's conv_transpose with the
    padding found: the same output, or the same shifted by one when ``shifted``."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, i)), rng.standard_normal((2, 3, k))
    full = full_size(i, k, s, d)
    for begin, size in itertools.product(range(0, 4), range(1, full + 3)):
        want = source_output(x, w, s, d, begin, size)
        try:
            found = torch_padding(i, k, s, d, size, begin)
        except NoTorchPadding:
            continue
        got = conv_transpose1d(torch.from_numpy(x), torch.from_numpy(w), stride=s,
                                 padding=found.padding, output_padding=found.output_padding,
                                 dilation=d).numpy()  # fmt: skip
        assert got.shape == want.shape
        offset = found.padding - begin
        assert found.shifted == (offset != 0)
        if offset == 0:
            np.testing.assert_allclose(got, want, atol=1e-12)
        else:  # torch's window starts `offset` positions later
            overlap = size - abs(offset)
            mine = got[:, :, : overlap] if offset > 0 else got[:, :, -offset:]
            theirs = want[:, :, offset:] if offset > 0 else want[:, :, :overlap]
            np.testing.assert_allclose(mine, theirs, atol=1e-12)


def test_torch_padding_refuses_what_torch_cannot_crop() -> None:
    # stride 1, kernel 2: the full output has 6 positions; 5 needs an odd crop, which
    # torch's symmetric padding can't make without output_padding (stride 1 allows none)
    with pytest.raises(NoTorchPadding, match="output_padding must be 0 to 0"):
        torch_padding(5, 2, 1, 1, 5, 0)
    with pytest.raises(NoTorchPadding, match="an output of 0 positions"):
        torch_padding(5, 2, 1, 1, 0, 0)
    # Keras 'same', k3 s2 on 26: the seed layer, torch's padding 1 + output_padding 1
    assert torch_padding(26, 3, 2, 1, 52, 0).shifted
    assert not torch_padding(26, 3, 2, 1, 52, 1).shifted


SEED = Problem.create(batch=1, in_channels=32, out_channels=32, input=(26, 26), kernel=3,
                      stride=2, padding=1, output_padding=1, bias=True)  # fmt: skip
OTHER = parse_case("in_channels=8,out_channels=4,input=5,kernel=4,stride=2,padding=1").problem


def imported() -> ImportedModel:
    return ImportedModel(
        "my net", "my.py:Net",
        (
            ImportedLayer("dec.up1", SEED, shifted=True),
            ImportedLayer("dec.up2", SEED, shifted=True),
            ImportedLayer("head", OTHER, passes=("forward",), count=7),
            ImportedLayer("weird", None, refused="stride 1 allows no output_padding"),
            ImportedLayer("dec.up1", SEED),  # the same name again: names stay unique
        ),
        notes=("batch set to 1 (--batch)",),
    )  # fmt: skip


def test_the_suite_an_import_writes_reads_back(tmp_path: Path) -> None:
    text = suite_text(imported(), "deconvbench import my.py:Net")
    path = tmp_path / "net.toml"
    path.write_text(text)
    suite = load_suite(str(path))
    assert suite.name == "my net"
    assert "imported from my.py:Net by `deconvbench import my.py:Net`" in suite.description
    assert "batch set to 1 (--batch)" in suite.description
    assert [(c.name, c.problem, c.passes, c.count, c.layers) for c in suite.cases] == [
        ("dec.up1", SEED, ("forward", "backward"), 2, ("dec.up1", "dec.up2")),
        ("head", OTHER, ("forward",), 7, ("head",)),
        ("dec.up1-2", SEED, ("forward", "backward"), 1, ("dec.up1",)),
    ]
    assert "# left out: weird: stride 1 allows no output_padding" in text
    assert text.count("shifted by one") == 1  # above the shifted case only


def write_suite(tmp_path: Path, case: str, top: str = "") -> Path:
    path = tmp_path / "s.toml"
    head = f'name = "s"\ndescription = "d"\n{top}\n[[case]]\nname = "a"\n'
    path.write_text(f"{head}in_channels = 2\nout_channels = 2\ninput = [4]\nkernel = 3\n{case}")
    return path


@pytest.mark.parametrize(
    "case, top, words",
    [
        ("count = 0\n", "", "count: must be at least 1, got 0"),
        ('count = "3"\n', "", "count: expected an integer"),
        ("layers = [1, 2]\n", "", "layers: expected a list of layer names"),
        ("", "[defaults]\ncount = 2\n", "count: cannot be a default"),
    ],
)
def test_bad_count_and_layers_are_input_errors(
    tmp_path: Path, case: str, top: str, words: str
) -> None:
    with pytest.raises(InputError, match=words):
        load_suite(str(write_suite(tmp_path, case, top)))


def test_a_sweep_and_a_case_string_take_no_count(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\ndescription = "d"\n[[sweep]]\nname = "k{kernel}"\n'
                    "in_channels = [2]\nout_channels = [2]\ninput = [[4]]\nkernel = [2, 3]\n"
                    "count = [2]\n")  # fmt: skip
    with pytest.raises(InputError, match=r"count: not in a \[\[sweep\]\]"):
        load_suite(str(path))
    with pytest.raises(InputError, match="unknown key 'count'"):
        parse_case("in_channels=2,out_channels=2,input=4,kernel=3,count=2")


def test_shapes_and_sources_are_checked() -> None:
    assert parse_shape("16x100x1x1") == (16, 100, 1, 1)
    with pytest.raises(InputError, match="--input: expected sizes joined by x"):
        parse_shape("16x0")
    with pytest.raises(InputError, match="no such file, and not a module:attr spec"):
        read_model("no/such/file.onnx")


def model_rows() -> list[dict[str, object]]:
    """Two cases of a model (count 3 and 1), three strategies, both passes."""
    times = {  # (case, impl) -> (forward, backward)
        ("up1", "torch-cpu/native"): (2.0, 4.0), ("up1", "numpy/a"): (1.0, 5.0),
        ("up1", "numpy/b"): (3.0, 3.0), ("up2", "torch-cpu/native"): (1.0, 1.0),
        ("up2", "numpy/a"): (2.0, 0.5),
    }  # fmt: skip
    rows = []
    for (case, impl), (fwd, bwd) in times.items():
        for pass_, t in (("forward", fwd), ("backward", bwd)):
            rows.append(row(impl, case=case, pass_=pass_, samples=[t] * 5,
                            count=3 if case == "up1" else 1))  # fmt: skip
    rows.append(row("numpy/b", case="up2", status="error", count=1))
    return rows


def test_model_totals_sum_count_times_median_and_mix_the_best_per_layer() -> None:
    (totals,) = model_totals(model_rows())
    assert (totals.suite, totals.cases, totals.layers) == ("smoke", 2, 4)
    by = {t.implementation: t for t in totals.totals}
    assert (by["torch-cpu/native"].forward_ms, by["torch-cpu/native"].backward_ms) == (7.0, 13.0)
    assert (by["numpy/a"].forward_ms, by["numpy/a"].backward_ms) == (5.0, 15.5)
    assert "numpy/b" not in by  # not ok on every case: it can't run the model
    assert totals.mix.implementation == MIX
    assert (totals.mix.forward_ms, totals.mix.backward_ms) == (3 * 1.0 + 1.0, 3 * 3.0 + 0.5)
    assert totals.choices["forward"] == {"up1": "numpy/a", "up2": "torch-cpu/native"}
    assert totals.baseline == "torch-cpu/native"
    assert totals.speedup("both") == pytest.approx(20.0 / 13.5)
    assert [t.implementation for t in totals.totals] == ["torch-cpu/native", "numpy/a"]


def test_rows_without_counts_have_no_model_totals() -> None:
    assert model_totals([row("numpy/a", samples=[1.0] * 5)]) == []


IMPORTED = re.compile(r"by `deconvbench import (.*?)`")


@pytest.mark.parametrize("name", ["unet-decoder", "seed-keras"])
def test_a_shipped_imported_suite_is_what_its_command_makes(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command in the description, run again (to another file), gives the same cases."""
    shipped = load_suite(name)
    found = IMPORTED.search(shipped.description)
    assert found is not None
    args = shlex.split(found[1])
    out = args.index("-o")
    args[out + 1] = str(tmp_path / "again.toml")
    monkeypatch.chdir(Path(__file__).parents[1])  # the models import from the checkout
    result = CliRunner().invoke(cli.app, ["import", *args])
    assert result.exit_code == 0, result.output
    again = load_suite(str(tmp_path / "again.toml"))
    assert [(c.name, c.problem, c.passes, c.count, c.layers) for c in again.cases] == [
        (c.name, c.problem, c.passes, c.count, c.layers) for c in shipped.cases
    ]
