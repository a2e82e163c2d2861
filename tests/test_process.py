"""The process state a measurement runs in (``harness/process.py``): the allocator's memory
state, OpenBLAS's workers, ``--allocator``; and that rows record the page faults.

Anything that sets the memory state runs in a subprocess: ``mallopt`` lasts for the process,
and a cold test process would slow every test after it.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deconvbench.errors import InputError
from deconvbench.harness import process
from deconvbench.results.reader import read_results
from deconvbench.run.types import RunOptions

FAULTS_OF_A_LOOP = """
import json, resource, sys
import numpy as np
from deconvbench.harness.process import set_memory_state
settings = set_memory_state(sys.argv[1])
np.ones(8 << 20, dtype=np.uint8)  # a large block freed: glibc's own rule would warm up here
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = np.ones(4 << 20, dtype=np.uint8)  # 4 MiB, written: 1024 pages
    del a
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"faults": faults, "allocator": settings.allocator, "applied": settings.applied}))
"""


def faults_of_a_loop(state: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_OF_A_LOOP, state],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_warm_state_reuses_memory_and_the_cold_state_maps_fresh_pages() -> None:
    if process.allocator_in_use() != "glibc":
        pytest.skip("glibc's malloc is not the allocator here")
    warm, cold = faults_of_a_loop("warm"), faults_of_a_loop("cold")
    assert warm["allocator"] == cold["allocator"] == "glibc"
    assert warm["applied"] == process.THRESHOLDS["warm"]
    assert cold["applied"] == process.THRESHOLDS["cold"]
    assert float(str(warm["faults"])) < 50  # the heap's pages, reused
    assert float(str(cold["faults"])) > 250  # fresh pages: 1024 a block, fewer with huge pages


def test_a_bad_memory_state_is_input_error() -> None:
    with pytest.raises(InputError, match="--memory-state: expected warm or cold, got 'tepid'"):
        process.check_memory_state("tepid")
    with pytest.raises(InputError, match="memory-state"):
        RunOptions(memory_state="tepid")  # type: ignore[arg-type]


def test_an_allocator_needs_a_worker_and_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="--allocator: needs --isolate"):
        RunOptions(allocator="jemalloc")
    with pytest.raises(InputError, match="expected one of jemalloc, tcmalloc, got 'hoard'"):
        process.allocator_library("hoard")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(InputError, match="apt-get install libjemalloc2"):
        process.allocator_library("jemalloc")


def test_settling_the_thread_pools_leaves_the_blas_working() -> None:
    a = np.random.default_rng(0).standard_normal((300, 300))
    expected = a @ a
    for _ in range(3):
        process.settle_thread_pools()
        assert np.array_equal(a @ a, expected)


CASE = "in_channels=16,out_channels=16,input=32x32,kernel=4,stride=2,padding=1"
FAST = ["--budget", "0.05", "--min-samples", "3", "--threads", "1", "--rounds", "2"]


def run_cli(tmp_path: Path, *args: str) -> tuple[Path, dict[str, object]]:
    out = tmp_path / "r.csv"
    command = [sys.executable, "-m", "deconvbench", "run", "--case", CASE, "--impl",
               "numpy/fft", "--pass", "forward", *FAST, "-o", str(out), *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, json.loads(Path(f"{out}.json").read_text())


def test_rows_record_page_faults_and_note_fresh_pages_in_the_cold_state(tmp_path: Path) -> None:
    if process.allocator_in_use() != "glibc":
        pytest.skip("glibc's malloc is not the allocator here")
    warm_csv, warm_facts = run_cli(tmp_path / "warm")
    cold_csv, cold_facts = run_cli(tmp_path / "cold", "--memory-state", "cold")
    assert warm_facts["memory"]["state"] == "warm"  # type: ignore[index]
    assert cold_facts["memory"]["state"] == "cold"  # type: ignore[index]
    (warm,) = read_results(warm_csv).to_dict("records")
    (cold,) = read_results(cold_csv).to_dict("records")
    # numpy/fft allocates its spectra each call (over a megabyte here): fresh pages when cold
    assert warm["minor_faults_per_call"] < 50 and "fresh pages" not in warm["message"]
    assert cold["minor_faults_per_call"] > 150
    found = re.search(r"fresh pages: ([\d.]+) MB a call", cold["message"])
    assert found is not None and float(found[1]) > 0.5


@pytest.mark.skipif(
    ctypes.util.find_library("jemalloc") is None, reason="libjemalloc2 is not installed"
)
def test_measurements_run_under_jemalloc_in_workers(tmp_path: Path) -> None:
    out, facts = run_cli(tmp_path, "--allocator", "jemalloc")
    memory = facts["memory"]
    assert memory["allocator"] == "jemalloc" and "jemalloc" in memory["preloaded"]  # type: ignore[index]
    assert facts["options"]["isolate"] is True  # type: ignore[index]
    assert set(read_results(out)["status"]) == {"ok"}
