from __future__ import annotations

import numpy as np
import torch

from deconvbench.harness.inputs import make_inputs, round_to_bfloat16
from deconvbench.problem import Problem


def test_inputs_are_deterministic_and_shaped() -> None:
    p = Problem.create(batch=2, in_channels=3, out_channels=4, input=(5,), kernel=3, bias=True)
    a, b = make_inputs(p, 3), make_inputs(p, 3)
    for u, v in zip(a, b, strict=True):
        assert u is not None and v is not None
        np.testing.assert_array_equal(u, v)
    assert a.x.shape == p.x_shape and a.weight.shape == p.weight_shape
    assert a.bias is not None and a.bias.shape == (4,)
    assert a.grad_output.shape == p.y_shape
    assert a.x.dtype == np.float32
    assert not np.array_equal(make_inputs(p, 4).x, a.x)
    assert make_inputs(Problem.create(**{**p.__dict__, "bias": False}), 3).bias is None


def test_bfloat16_rounding_matches_torch() -> None:
    values = np.random.default_rng(0).uniform(-3, 3, 10_000).astype(np.float32)
    ours = round_to_bfloat16(values)
    theirs = torch.from_numpy(values).to(torch.bfloat16).to(torch.float32).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_float16_inputs_are_float16() -> None:
    p = Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(4,), kernel=2, dtype="float16"
    )
    assert make_inputs(p).x.dtype == np.float16
