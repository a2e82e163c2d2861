"""The problem model: validation messages, output shape, cost model, identity."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from deconvbench.errors import ProblemError
from deconvbench.problem import Problem

from problems import problems


def make(**kw: object) -> Problem:
    base: dict[str, object] = dict(
        batch=2, in_channels=4, out_channels=6, input=(5, 5), kernel=3, stride=2, padding=1
    )
    base.update(kw)
    return Problem.create(**base)  # type: ignore[arg-type]


@given(problems())
def test_output_shape_matches_torch(problem: Problem) -> None:
    conv = {
        1: torch.nn.functional.conv_transpose1d,
        2: torch.nn.functional.conv_transpose2d,
        3: torch.nn.functional.conv_transpose3d,
    }[problem.ndim]
    x = torch.zeros(problem.x_shape)
    w = torch.zeros(problem.weight_shape)
    y = conv(
        x,
        w,
        None,
        problem.stride,
        problem.padding,
        problem.output_padding,
        problem.groups,
        problem.dilation,
    )
    assert tuple(y.shape) == problem.y_shape


def test_scalars_broadcast_to_every_dimension() -> None:
    p = make(input=(3, 4, 5), kernel=2, stride=(1, 2, 3))
    assert p.kernel == (2, 2, 2)
    assert p.stride == (1, 2, 3)
    assert p.padding == (1, 1, 1)
    assert p.ndim == 3


def test_frozen_and_hashable() -> None:
    a, b = make(), make()
    assert a == b and hash(a) == hash(b)
    assert len({a, b, make(bias=True)}) == 2
    with pytest.raises(AttributeError):
        a.batch = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        (dict(batch=0), "batch: must be >= 1"),
        (dict(in_channels=-1), "in_channels: must be >= 1"),
        (dict(batch=True), "batch: expected an integer"),
        (dict(stride=0), "stride: every value must be >= 1"),
        (dict(padding=-1), "padding: every value must be >= 0"),
        (dict(dilation=(1, 0)), "dilation: every value must be >= 1"),
        (dict(input=(0, 4)), "input: every value must be >= 1"),
        (dict(kernel=(3, 3, 3)), "kernel: has 3 values but the input has 2"),
        (dict(input=(1, 2, 3, 4)), "input: must have 1, 2 or 3"),
        (dict(output_padding=2), "output_padding: must satisfy 0 <= output_padding < max"),
        (dict(groups=3), "groups: must divide in_channels"),
        (dict(in_channels=6, groups=4, out_channels=8), "groups: must divide in_channels"),
        (dict(in_channels=6, groups=3, out_channels=4), "groups: must divide out_channels"),
        (dict(dtype="int8"), "dtype: must be one of"),
        (dict(bias="yes"), "bias: expected true or false"),
        (dict(input=(1, 1), kernel=1, stride=1, padding=1), "output size"),
        (dict(stride=2.0), "stride: expected an integer"),
        (dict(kernel="3"), "kernel: expected an integer or a tuple"),
    ],
)
def test_invalid_problems_name_the_parameter(kw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ProblemError, match=fragment.replace("(", r"\(")):
        make(**kw)


def test_output_padding_may_reach_dilation() -> None:
    # (5-1)*1 - 2*1 + 3*(3-1) + 2 + 1 = 11: output_padding up to dilation-1 when stride is 1
    assert make(stride=1, dilation=3, output_padding=2).output == (11, 11)


def test_flops_model() -> None:
    p = make(batch=2, in_channels=4, out_channels=6, groups=2, input=(5, 5), kernel=3, bias=True)
    f0 = 2 * 2 * (4 // 2) * 6 * 25 * 9
    assert p.flops_forward == f0 == p.flops("forward")
    assert p.flops_grad_input == f0 and p.flops_grad_weight == f0
    assert p.flops_grad_bias == 2 * 6 * p.output[0] * p.output[1]
    assert p.flops("backward") == 2 * f0 + p.flops_grad_bias
    assert make(bias=False).flops_grad_bias == 0


def test_bytes_and_intensity() -> None:
    p = make(dtype="float64")
    x, w, y = 2 * 4 * 25, 4 * 6 * 9, 2 * 6 * p.output[0] * p.output[1]
    assert p.bytes_moved("forward") == 8 * (x + w + y)
    assert p.bytes_moved("backward") == 8 * (y + x + w + x + w)
    assert p.arithmetic_intensity("forward") == pytest.approx(p.flops_forward / (8 * (x + w + y)))
    assert make(dtype="bfloat16").itemsize == 2


def test_reduction_lengths() -> None:
    p = make(groups=2, in_channels=4, out_channels=6)
    assert p.reduction_forward == 2 * 9
    assert p.reduction_grad_input == 3 * 9
    assert p.reduction_grad_weight == 2 * 25
    assert p.reduction_grad_bias == 2 * p.output[0] * p.output[1]


@given(problems(dtypes=("float32", "float64", "float16", "bfloat16")))
def test_spec_names_every_field(problem: Problem) -> None:
    spec = dict(pair.split("=") for pair in problem.spec().split(","))
    assert spec["input"] == "x".join(map(str, problem.input))
    assert spec["dtype"] == problem.dtype
    assert spec["bias"] == str(problem.bias).lower()
    assert set(spec) == {
        "batch",
        "in_channels",
        "out_channels",
        "input",
        "kernel",
        "stride",
        "padding",
        "output_padding",
        "dilation",
        "groups",
        "bias",
        "dtype",
    }


def test_str_is_readable() -> None:
    text = str(make(groups=2, in_channels=4, out_channels=6, dilation=2, bias=True))
    assert "N2 4->6 in 5x5 k3x3 s2x2 p1x1" in text and "g2" in text and "+bias" in text


def _brute_force_reaching(p: Problem) -> int:
    """Count the (input position, tap) products that land inside the output, one by one."""
    import itertools

    count = 0
    for pos in itertools.product(*(range(n) for n in p.input)):
        for tap in itertools.product(*(range(k) for k in p.kernel)):
            dest = [
                i * s - pad + t * d
                for i, t, s, pad, d in zip(pos, tap, p.stride, p.padding, p.dilation, strict=True)
            ]
            count += all(0 <= o < size for o, size in zip(dest, p.output, strict=True))
    return 2 * p.batch * (p.in_channels // p.groups) * p.out_channels * count


@pytest.mark.parametrize(
    "spec",
    [
        dict(input=(5,), kernel=3, stride=2, padding=1),
        dict(input=(4, 3), kernel=(4, 3), stride=(2, 3), padding=(1, 2), output_padding=(1, 0)),
        dict(input=(3, 4), kernel=(3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 3)),
        dict(input=(6,), kernel=5, stride=3, padding=4, output_padding=2, dilation=2),
        dict(input=(2, 3, 2), kernel=(2, 3, 2), stride=(2, 1, 3), padding=(1, 1, 0)),
        dict(input=(7,), kernel=4, stride=1, padding=0),
    ],
)
def test_flops_reaching_output_matches_a_brute_force_count(spec: dict[str, object]) -> None:
    p = Problem.create(batch=2, in_channels=4, out_channels=6, groups=2, **spec)  # type: ignore[arg-type]
    assert p.flops_forward_reaching == _brute_force_reaching(p)
    assert p.flops_forward_reaching <= p.flops_forward
    assert p.flops_reaching("backward") == 2 * p.flops_forward_reaching + p.flops_grad_bias
    no_padding = Problem.create(batch=1, in_channels=2, out_channels=3, input=(5, 4), kernel=3)
    assert no_padding.flops_forward_reaching == no_padding.flops_forward


def test_from_shapes_reads_torchs_layout() -> None:
    """x (N, Cin, *spatial), weight (Cin, Cout/groups, *kernel): out_channels is the
    weight's second dimension times groups."""
    got = Problem.from_shapes((2, 6, 5, 7), (6, 4, 3, 2), stride=2, padding=(1, 0), groups=3,
                              bias=True, dtype="float64")  # fmt: skip
    assert got == Problem.create(batch=2, in_channels=6, out_channels=12, input=(5, 7),
                                 kernel=(3, 2), stride=2, padding=(1, 0), groups=3, bias=True,
                                 dtype="float64")  # fmt: skip
