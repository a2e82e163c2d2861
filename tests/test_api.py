"""The Python API of docs/design.md: numpy in, numpy out, torch's semantics and argument
order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deconvbench as db


def _arrays(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 3)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    return x, w, b


KW = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2))


def test_forward_matches_torch_and_keeps_dtype() -> None:
    x, w, b = _arrays()
    y = db.conv_transpose("numpy/direct", x, w, b, **KW)  # type: ignore[arg-type]
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **KW
    )
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-5, atol=1e-5)


def test_backward_bias_flag() -> None:
    x, w, _ = _arrays(np.float64)
    y_shape = db.Problem.create(
        batch=2,
        in_channels=4,
        out_channels=6,
        input=(5, 3),
        kernel=(3, 2),
        **KW,  # type: ignore[arg-type]
    ).y_shape
    gy = np.ones(y_shape)
    gx, gw, gb = db.conv_transpose_backward("numpy/direct", gy, x, w, True, **KW)  # type: ignore[arg-type]
    assert gx.shape == x.shape and gw.shape == w.shape
    assert gb is not None and gb.shape == (6,)
    np.testing.assert_allclose(gb, np.full(6, gy[:, 0].size))
    assert db.conv_transpose_backward("numpy/direct", gy, x, w, None, **KW)[2] is None  # type: ignore[arg-type]


def test_implementations_rows() -> None:
    rows = db.implementations()
    direct = next(r for r in rows if r.name == "numpy/direct")
    assert (direct.backend, direct.algorithm, direct.device, direct.available) == (
        "numpy",
        "direct",
        "cpu",
        True,
    )
    assert direct.reason == ""


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda x, w: db.conv_transpose("numpy/direct", x[0], w), db.ProblemError, "input"),
        (lambda x, w: db.conv_transpose("numpy/direct", x, w[0]), db.ProblemError, "weight"),
        (lambda x, w: db.conv_transpose("numpy/direct", x, w[:2]), db.ProblemError, "channels"),
        (
            lambda x, w: db.conv_transpose("numpy/direct", x, w.astype(np.float64)),
            db.ProblemError,
            "dtype",
        ),
        (
            lambda x, w: db.conv_transpose("numpy/direct", x.astype(np.int32), w.astype(np.int32)),
            db.ProblemError,
            "dtype",
        ),
        (
            lambda x, w: db.conv_transpose("numpy/direct", x, w, np.zeros(5, np.float32)),
            db.ProblemError,
            "bias",
        ),
        (lambda x, w: db.conv_transpose("numpy/direct", x, w, stride=0), db.ProblemError, "stride"),
        (lambda x, w: db.conv_transpose("no/such", x, w), db.Unavailable, "no strategy"),
        (
            lambda x, w: db.conv_transpose(
                "numpy/direct", x.astype(np.float16), w.astype(np.float16)
            ),
            db.Unsupported,
            "float16",
        ),
        (
            lambda x, w: db.conv_transpose_backward("numpy/direct", np.zeros((1, 1)), x, w),
            db.ProblemError,
            "grad_output",
        ),
    ],
)
def test_bad_calls_raise_clear_errors(call: object, error: type, fragment: str) -> None:
    x, w, _ = _arrays()
    with pytest.raises(error, match=fragment):
        call(x, w)  # type: ignore[operator]


def test_unsupported_is_a_value_error() -> None:
    assert issubclass(db.Unsupported, ValueError)
