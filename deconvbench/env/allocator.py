"""The allocator: which malloc this process calls, its version, its tunables, and the
transparent-huge-page state its large blocks meet."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path

from .probe import Facts

ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")  # replacements, known by their file's name

ALLOCATOR_VARIABLES = re.compile(r"GLIBC_TUNABLES|MALLOC_\w+|(JE_|_RJEM_|TC|MI)MALLOC_\w+")
"""Environment variables that tune malloc: glibc's, jemalloc's, tcmalloc's, mimalloc's."""

def name_of(path: str) -> str | None:
    """Which allocator a library file is: jemalloc, tcmalloc, mimalloc, glibc, musl."""
    name = Path(path).name
    if re.match(r"libc(\.so|-\d)", name):
        return "glibc"
    return next((a for a in (*ALLOCATORS, "musl") if a in name), None)


def in_maps(maps: str) -> str | None:
    """The first replacement allocator's file among a /proc/<pid>/maps text's mappings."""
    paths = (line.split(maxsplit=5)[-1] for line in maps.splitlines() if line.count(" ") >= 5)
    return next((p for p in paths if name_of(p) in ALLOCATORS), None)


def tunables(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(environ.items()) if ALLOCATOR_VARIABLES.fullmatch(k)}


def malloc_library() -> str | None:
    """The file whose ``malloc`` this process calls (dladdr), else a replacement allocator
    among the mappings (no dladdr: neither glibc nor macOS), else None."""
    with contextlib.suppress(Exception):
        process, info = ctypes.CDLL(None), (ctypes.c_void_p * 4)()  # Dl_info: file name first
        if process.dladdr(ctypes.cast(process.malloc, ctypes.c_void_p), info) and info[0]:
            return str(Path(ctypes.string_at(info[0]).decode()).resolve())
    with contextlib.suppress(OSError):
        return in_maps(Path("/proc/self/maps").read_text())
    return None


def version_of(name: str | None) -> str | None:
    """The version the allocator in this process reports about itself (no file reading)."""
    process = ctypes.CDLL(None)
    if name == "glibc":  # platform asks os.confstr("CS_GNU_LIBC_VERSION") first
        return platform.libc_ver()[1] or None
    if name == "jemalloc" and hasattr(process, "mallctl"):
        value, size = ctypes.c_char_p(), ctypes.c_size_t(ctypes.sizeof(ctypes.c_char_p))
        args = (ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0))  # read only
        if process.mallctl(b"version", *args) == 0 and value.value:
            return value.value.decode()
    if name == "tcmalloc" and hasattr(process, "tc_version"):
        process.tc_version.restype = ctypes.c_char_p
        return str(process.tc_version(None, None, None).decode())
    if name == "mimalloc" and hasattr(process, "mi_version"):
        return ".".join(str(int(process.mi_version())))  # 217 is 2.1.7
    return None


THP_DIR = "/sys/kernel/mm/transparent_hugepage"


def chosen(setting: str) -> str | None:
    """The bracketed choice of a sysfs setting: ``always [madvise] never`` → ``madvise``."""
    match = re.search(r"\[(\w[\w+]*)\]", setting)
    return match.group(1) if match else None


def huge_pages(thp_dir: str = THP_DIR) -> Facts:
    """Transparent huge pages: the kernel's policy (``enabled``, ``defrag``) and whether
    numpy asks for them on its large arrays (``madvise``). Whether a process's big buffers
    get 2 MiB pages moved one numpy layer 2x here (2.7-3.1 against 5.8-6.6 ms from one
    process to the next), so a row's time depends on it."""
    facts: Facts = {}
    for key in ("enabled", "defrag"):
        with contextlib.suppress(OSError):
            facts[key] = chosen(Path(thp_dir, key).read_text())
    with contextlib.suppress(Exception):  # a private numpy function: absent in some versions
        multiarray = importlib.import_module("numpy._core.multiarray")
        facts["numpy_madvise"] = bool(multiarray._get_madvise_hugepage())
    return facts


def allocator() -> Facts:
    """The malloc this process runs on: name, version, its file, LD_PRELOAD, tunables, and
    the transparent-huge-page state its large blocks meet."""
    library = malloc_library()
    name = name_of(library) if library else (platform.libc_ver()[0] or None)
    version = None
    with contextlib.suppress(Exception):
        version = version_of(name)
    return {
        "name": name,
        "version": version,
        "library": library,
        "preloaded": os.environ.get("LD_PRELOAD") or None,
        "tunables": tunables(os.environ),
        "huge_pages": huge_pages(),
    }
