"""Environment facts: every section present, JSON-ready, and never an exception."""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from deconvbench import __version__, env


def test_collect_has_every_section_and_is_json() -> None:
    facts = env.collect()
    assert set(env.SECTIONS) <= set(facts)
    json.dumps(facts)  # the sidecar must be able to hold it as is
    assert facts["deconvbench"]["version"] == __version__  # type: ignore[index]
    assert facts["python"]["version"] == platform.python_version()  # type: ignore[index]
    assert facts["numpy"]["version"] == np.__version__  # type: ignore[index]
    cpu = facts["cpu"]
    assert isinstance(cpu, dict) and cpu["logical_cores"] >= 1
    assert facts["memory"]["total_gb"] > 0  # type: ignore[index]


def test_torch_section_records_version_threads_and_build() -> None:
    torch = pytest.importorskip("torch")
    facts = env.collect()["torch"]
    assert isinstance(facts, dict)
    assert facts["version"] == torch.__version__
    assert facts["num_threads"] == torch.get_num_threads()
    assert isinstance(facts["build"], dict)


def test_cuda_section_says_why_when_there_is_no_gpu() -> None:
    torch = pytest.importorskip("torch")
    cuda = env.collect()["cuda"]
    assert isinstance(cuda, dict)
    if torch.cuda.is_available():
        assert cuda["available"] is True and cuda["devices"]
    else:
        assert cuda["available"] is False and cuda["reason"]


def test_a_failing_probe_becomes_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(env.SECTIONS, "cpu", broken)
    facts = env.collect()
    assert facts["cpu"] == {"reason": "could not be probed: RuntimeError: probe exploded"}
    assert facts["python"]["version"]  # type: ignore[index]  # the others are unaffected


def test_a_missing_library_gives_none_and_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_numba(name: str, package: str | None = None) -> ModuleType:
        if name == "numba":
            raise ImportError("No module named 'numba'")
        return real(name, package)

    monkeypatch.setattr(env.libraries.importlib, "import_module", without_numba)
    numba = env.collect()["numba"]
    assert numba == {"version": None, "reason": "not installed (pip install 'deconvbench[numba]')"}


def test_outside_a_git_checkout_the_revision_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env.system, "run", lambda args, cwd=None: None)
    facts = env.collect()["deconvbench"]
    assert isinstance(facts, dict)
    assert facts["git_revision"] is None and facts["reason"] == "not a git checkout"


def test_thread_variables_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    variables = env.collect()["variables"]
    assert isinstance(variables, dict)
    assert variables["OMP_NUM_THREADS"] == "3" and "MKL_NUM_THREADS" not in variables


def test_run_helper_survives_missing_and_failing_commands() -> None:
    assert env.probe.run(["deconvbench-no-such-command-xyz"]) is None
    assert env.probe.run([sys.executable, "-c", "import sys; sys.exit(3)"]) is None
    assert env.probe.run([sys.executable, "-c", "print(' hi ')"]) == "hi"


def test_summary_is_one_line() -> None:
    line = env.summary(env.collect())
    assert "\n" not in line and "cores" in line
    assert env.summary({}) == "unknown CPU"


# --- what decides the kernels: ISA, BLAS core type, oneDNN's ISA, the allocator -------------

LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


def _library(*names: str) -> str | None:
    """The first of ``names`` installed in a usual library folder, else None."""
    found = (Path(d) / n for n in names for d in LIBRARY_DIRS)
    return next((str(p) for p in found if p.exists()), None)


def _in_child(code: str, **variables: str) -> str:
    """stdout of ``code`` run by this Python with ``variables`` added to the environment."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **variables},
    )
    return done.stdout


def test_isa_flags_cover_the_kernel_deciding_extensions() -> None:
    wanted = {"sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"}
    wanted |= {"avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"}
    assert wanted | {"avx", "neon", "asimd", "sve"} <= set(env.cpu.ISA_FLAGS)


def test_cpu_records_isa_identity_and_caches() -> None:
    cpu = env.collect()["cpu"]
    assert isinstance(cpu, dict)
    assert {"vendor", "family", "model_number", "stepping", "microcode", "cache_kb"} <= set(cpu)
    if Path("/proc/cpuinfo").exists():
        flags = set(Path("/proc/cpuinfo").read_text().split("\n\n")[0].split())
        assert cpu["isa"] == [f for f in env.cpu.ISA_FLAGS if f in flags]
    if Path("/sys/devices/system/cpu/cpu0/cache/index0").exists():
        assert isinstance(cpu["cache_kb"], dict) and cpu["cache_kb"]["L1d"] > 0


def test_cache_sizes_are_read_from_sysfs_by_level_and_type(tmp_path: Path) -> None:
    for index, (level, kind, size) in enumerate(
        [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
         ("3", "Unified", "32768K")]
    ):  # fmt: skip
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(value + "\n")
    (tmp_path / "index9").mkdir()  # an entry without files is skipped
    assert env.cpu.cache_kb(tmp_path) == {"L1d": 48, "L1i": 32, "L2": 2048, "L3": 32768}
    assert env.cpu.cache_kb(tmp_path / "missing") == {}


def test_numpy_section_names_its_loaded_blas_and_core_type() -> None:
    from threadpoolctl import threadpool_info

    numpy = env.collect()["numpy"]
    assert isinstance(numpy, dict)
    pools = {p["filepath"]: p for p in threadpool_info() if p["user_api"] == "blas"}
    if not pools:
        pytest.skip("no BLAS thread pool is visible to threadpoolctl")
    pool = pools[numpy["blas_library"]]
    assert numpy["blas_api"] == pool["internal_api"]
    assert numpy["blas_coretype"] == pool.get("architecture")
    assert numpy["blas_threads"] == pool["num_threads"]


def test_kernel_variables_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "ONEDNN_MAX_CPU_ISA", "KMP_BLOCKTIME"):
        monkeypatch.setenv(name, "x")
    variables = env.collect()["variables"]
    assert isinstance(variables, dict)
    assert variables["OPENBLAS_CORETYPE"] == variables["ONEDNN_MAX_CPU_ISA"] == "x"
    recorded = set(env.system.THREAD_VARIABLES)
    assert {"OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OPENBLAS_L2_SIZE"} <= recorded


ONEDNN_HEADER = """\
onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71049cd69a3df32adcccb623b12cd7baa22)
onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:2
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support
onednn_verbose,v1,info,gpu,runtime:none
onednn_verbose,v1,primitive,exec,cpu,reorder,jit_direct_copy:uni,undef,src:f32,,1,0.001
"""


def test_onednn_header_is_parsed() -> None:
    assert env.libraries.onednn_header(ONEDNN_HEADER) == {
        "version": "3.12.0",
        "isa": "Intel AVX-512 with Intel DL Boost and bfloat16 support",
        "runtime": "OpenMP",
        "threads": 2,
    }
    older = "dnnl_verbose,info,oneDNN v2.7.3 (commit x)\ndnnl_verbose,info,cpu,isa:Intel AVX2\n"
    assert env.libraries.onednn_header(older) == {"version": "2.7.3", "isa": "Intel AVX2"}
    assert env.libraries.onednn_header("something else\n") == {}


def test_torch_section_records_the_isa_onednn_dispatches_to() -> None:
    torch = pytest.importorskip("torch")
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch is built without oneDNN")
    facts = env.collect()["torch"]
    assert isinstance(facts, dict)
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["onednn"]["isa"]  # type: ignore[index]


def test_onednn_isa_follows_its_limit_and_prints_nothing() -> None:
    """In a fresh process (oneDNN prints its header once): the ISA cap is obeyed and recorded,
    and oneDNN's verbose lines stay off stdout."""
    torch = pytest.importorskip("torch")
    cpu = env.collect()["cpu"]
    if not torch.backends.mkldnn.is_available() or "avx2" not in (cpu["isa"] or []):  # type: ignore[index]
        pytest.skip("needs an x86 CPU with AVX2 and a torch with oneDNN")
    code = "import json; from deconvbench import env; f = env.collect(); "
    code += "print(json.dumps([f['torch']['onednn'], f['variables']]))"
    out = _in_child(code, ONEDNN_MAX_CPU_ISA="AVX2")
    assert out.count("\n") == 1 and "_verbose" not in out
    onednn, variables = json.loads(out)
    assert onednn["isa"] == "Intel AVX2" and variables["ONEDNN_MAX_CPU_ISA"] == "AVX2"


MAPS = """\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 131 /usr/bin/python3.11
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0
7f1c2b000000-7f1c2b00a000 r--p 00000000 08:01 4242 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
7f1c2c000000-7f1c2c028000 r--p 00000000 08:01 4243 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd1e9f0000-7ffd1ea11000 rw-p 00000000 00:00 0                          [stack]
"""


def test_allocator_is_named_by_its_file() -> None:
    name = env.allocator.name_of
    assert name("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2") == "jemalloc"
    assert name("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10") == "tcmalloc"
    assert name("/opt/lib/libmimalloc.so.2.1") == "mimalloc"
    assert name("/usr/lib/x86_64-linux-gnu/libc.so.6") == name("/lib64/libc-2.17.so") == "glibc"
    assert name("/lib/ld-musl-x86_64.so.1") == "musl"
    assert name("/usr/lib/libcrypto.so.3") is None


def test_a_replacement_allocator_is_found_in_the_mappings() -> None:
    assert env.allocator.in_maps(MAPS) == "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    without = "\n".join(line for line in MAPS.splitlines() if "jemalloc" not in line)
    assert env.allocator.in_maps(without) is None
    assert env.allocator.in_maps("") is None


def test_allocator_tunables_are_every_malloc_variable() -> None:
    environ = {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "MALLOC_ARENA_MAX": "2",
        "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_CONF": "narenas:1",
        "JE_MALLOC_CONF": "dirty_decay_ms:0", "TCMALLOC_RELEASE_RATE": "0",
        "MIMALLOC_ARENA_EAGER_COMMIT": "1", "PYTORCH_CUDA_ALLOC_CONF": "x", "HOME": "/root",
    }  # fmt: skip
    tunables = env.allocator.tunables(environ)
    assert set(tunables) == set(environ) - {"PYTORCH_CUDA_ALLOC_CONF", "HOME"}
    assert list(tunables) == sorted(tunables) and tunables["MALLOC_ARENA_MAX"] == "2"


def test_allocator_section_names_glibc_when_nothing_replaces_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if platform.libc_ver()[0] != "glibc" or os.environ.get("LD_PRELOAD"):
        pytest.skip("needs glibc and no LD_PRELOAD")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    allocator = env.collect()["allocator"]
    assert isinstance(allocator, dict)
    assert allocator["name"] == "glibc" and allocator["version"] == platform.libc_ver()[1]
    assert allocator["preloaded"] is None and allocator["tunables"] == {"MALLOC_ARENA_MAX": "4"}
    assert env.summary(env.collect()).endswith("glibc malloc")


def test_huge_page_state_reads_the_bracketed_choices(tmp_path: Path) -> None:
    assert env.allocator.chosen("always [madvise] never\n") == "madvise"
    assert env.allocator.chosen("always defer defer+madvise [defer+madvise] never") == (
        "defer+madvise"
    )
    assert env.allocator.chosen("garbage") is None
    (tmp_path / "enabled").write_text("[always] madvise never\n")
    facts = env.allocator.huge_pages(str(tmp_path))  # no defrag file: left out, not an error
    assert facts["enabled"] == "always" and "defrag" not in facts
    assert isinstance(facts["numpy_madvise"], bool)


@pytest.mark.parametrize(
    ("name", "files", "version"),
    [
        ("jemalloc", ("libjemalloc.so.2", "libjemalloc.so"), r"\d+\.\d+\.\d+"),
        ("tcmalloc", ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"), r"gperftools \d"),
    ],
)
def test_a_preloaded_allocator_is_detected_for_real(
    name: str, files: tuple[str, ...], version: str
) -> None:
    library = _library(*files)
    if library is None:
        pytest.skip(f"{name} is not installed (apt-get install libjemalloc2 libtcmalloc-minimal4)")
    code = (
        "import json; from deconvbench import env; print(json.dumps(env.SECTIONS['allocator']()))"
    )
    facts = json.loads(_in_child(code, LD_PRELOAD=library, MALLOC_CONF="narenas:1"))
    assert facts["name"] == name and re.match(version, facts["version"])
    assert facts["preloaded"] == library and facts["tunables"]["MALLOC_CONF"] == "narenas:1"
    assert Path(facts["library"]).name.startswith(Path(library).name.split(".so")[0])


def test_summary_names_the_blas_core_type_and_the_allocator() -> None:
    facts: dict[str, object] = {
        "cpu": {"model": "AMD EPYC", "usable_cores": 2},
        "numpy": {"version": "2.4.6", "blas": "scipy-openblas 0.3.31", "blas_coretype": "Zen"},
        "allocator": {"name": "jemalloc"},
    }
    assert (
        env.summary(facts)
        == "AMD EPYC · 2 cores · numpy 2.4.6 (scipy-openblas 0.3.31, Zen) · jemalloc"
    )


def test_a_failing_onednn_probe_keeps_the_torch_section(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch is built without oneDNN")

    def broken() -> dict[str, object]:
        raise AssertionError("Failed to set MKLDNN into verbose mode")

    monkeypatch.setattr(env.libraries, "onednn", broken)
    facts = env.collect()["torch"]
    assert isinstance(facts, dict) and facts["version"] == torch.__version__
    assert facts["onednn"] == {
        "reason": "could not be probed: AssertionError: Failed to set MKLDNN into verbose mode"
    }
