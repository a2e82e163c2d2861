"""The Python API under memory pressure: refused up front or converted, always one line."""

from __future__ import annotations

import time

import numpy as np
import pytest

import deconvbench as db
from deconvbench import api, registry
from deconvbench.backends.numpy_ import zero_insert
from deconvbench.problem import Problem

# PyTorch's own ConvTranspose3d test case: 146 GiB of im2col columns before blocking
TORCH_CASE = dict(stride=16, padding=7, output_padding=(14, 6, 6))


def torch_case_arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 15, 13, 13), dtype=np.float32)
    w = rng.standard_normal((1, 1, 16, 16, 16), dtype=np.float32)
    return x, w


def test_torch_case_workspace_is_bounded() -> None:
    p = Problem.create(
        batch=1, in_channels=1, out_channels=1, input=(15, 13, 13), kernel=16, **TORCH_CASE
    )
    strategy = registry.get("numpy/zero-insert")
    for pass_ in ("forward", "backward"):
        assert strategy.workspace_bytes(p, pass_) < 2**30  # was 146 GiB


def test_refused_up_front_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_available", lambda strategy: 2**20)
    x, w = torch_case_arrays()
    start = time.perf_counter()
    with pytest.raises(db.InsufficientMemory) as info:
        db.conv_transpose("numpy/zero-insert", x, w, **TORCH_CASE)
    assert time.perf_counter() - start < 1.0  # refused before any allocation
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("numpy/zero-insert forward: needs about ")
    assert "only 1.0 MiB of memory available" in message
    assert isinstance(info.value, MemoryError)


def test_backward_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_available", lambda strategy: 2**10)
    x, w = torch_case_arrays()
    gy = np.zeros((1, 1, 240, 200, 200), dtype=np.float32)
    with pytest.raises(db.InsufficientMemory, match=r"^numpy/zero-insert backward: needs"):
        db.conv_transpose_backward("numpy/zero-insert", gy, x, w, **TORCH_CASE)


def test_memory_error_during_call_is_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args: object) -> np.ndarray:
        raise MemoryError("Unable to allocate 146. GiB for an array")

    strategy = registry.get("numpy/direct")
    monkeypatch.setattr(type(strategy), "forward_fn", staticmethod(out_of_memory))
    x = np.ones((1, 2, 3, 3), dtype=np.float32)
    w = np.ones((2, 2, 2, 2), dtype=np.float32)
    with pytest.raises(db.InsufficientMemory) as info:
        db.conv_transpose("numpy/direct", x, w)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("numpy/direct forward: needs about ")
    assert info.value.__suppress_context__


def test_normal_problem_unaffected() -> None:
    x = np.ones((2, 4, 3, 3), dtype=np.float32)
    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    y = db.conv_transpose("numpy/zero-insert", x, w, stride=2, padding=1)
    assert y.shape == (2, 2, 5, 5)


@pytest.mark.parametrize("budget", [64, 4096])
def test_blocked_matches_unblocked(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 4, 3, 5))
    w = rng.standard_normal((4, 3, 2, 3, 2))
    b = rng.standard_normal(6)
    gy_shape = (2, 6, 9, 5, 14)
    gy = rng.standard_normal(gy_shape)
    kw = dict(stride=(2, 1, 3), padding=(0, 1, 1), dilation=(1, 2, 1), output_padding=(1, 0, 2))
    whole = (
        db.conv_transpose("numpy/zero-insert", x, w, b, groups=2, **kw),
        *db.conv_transpose_backward("numpy/zero-insert", gy, x, w, True, groups=2, **kw),
    )
    monkeypatch.setattr(zero_insert, "COLUMN_BUDGET", 0)
    monkeypatch.setattr(zero_insert, "BLOCK_BYTES", budget)
    blocked = (
        db.conv_transpose("numpy/zero-insert", x, w, b, groups=2, **kw),
        *db.conv_transpose_backward("numpy/zero-insert", gy, x, w, True, groups=2, **kw),
    )
    for a, c in zip(whole, blocked, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_torch_case_runs_blocked() -> None:
    torch = pytest.importorskip("torch")
    x, w = torch_case_arrays()
    y = db.conv_transpose("numpy/zero-insert", x, w, **TORCH_CASE)
    expected = torch.nn.functional.conv_transpose3d(
        torch.from_numpy(x), torch.from_numpy(w), **TORCH_CASE
    ).numpy()
    assert y.shape == (1, 1, 240, 200, 200)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
