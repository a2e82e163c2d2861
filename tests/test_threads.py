"""--threads applied to torch, BLAS and numba, and restored."""

from __future__ import annotations

import importlib.util

import pytest
from threadpoolctl import threadpool_info

from deconvbench.errors import InputError
from deconvbench.harness.threads import available_cores, limit_threads


def _blas_threads() -> set[int]:
    return {int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"}


def test_one_thread_is_applied_everywhere_and_restored() -> None:
    torch = pytest.importorskip("torch")
    torch_before = torch.get_num_threads()
    blas_before = _blas_threads()
    with limit_threads(1) as applied:
        assert torch.get_num_threads() == 1
        assert _blas_threads() <= {1}
        assert applied.count == 1 and applied.requested == 1
        assert applied.applied["torch"] == 1
        assert any(k.startswith("blas:") for k in applied.applied)
        if importlib.util.find_spec("numba") is not None:
            import numba

            assert numba.get_num_threads() == 1
            assert applied.applied["numba"] == 1
    assert torch.get_num_threads() == torch_before
    assert _blas_threads() == blas_before


def test_none_means_every_available_core() -> None:
    with limit_threads(None) as applied:
        assert applied.count == available_cores()
        assert applied.requested is None


def test_restored_after_an_exception() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -2, True])
def test_bad_thread_counts_are_input_errors(bad: int) -> None:
    with pytest.raises(InputError, match="--threads"), limit_threads(bad):
        pass


def test_openblas_environment_is_recorded_not_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    with limit_threads(1) as applied:
        assert applied.env["OPENBLAS_CORETYPE"] == "Haswell"
        assert applied.env["OPENBLAS_L2_SIZE"] == "1048576"
        facts = applied.facts()
    assert facts["threads"] == 1 and facts["env"] == applied.env


def test_numba_is_capped_at_its_pool_size() -> None:
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba not installed")
    import numba

    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    with limit_threads(limit + 3) as applied:
        assert applied.applied["numba"] == limit
        assert any("NUMBA_NUM_THREADS" in n for n in applied.notes)
