"""A machine's fingerprint: the facts under which a measured choice of strategy holds.

A plan (``deconvbench plan``) is only true where it was measured: the same CPU (model and
core count), the same GPUs, the same thread count and the same versions of every library
whose kernels were timed. A fact a probe couldn't establish (an older sidecar, a library not
installed) is left out, and so not compared. :func:`fingerprint` takes the facts from an
``env`` record (a sidecar's, or :func:`current`'s, built by the same probes), so the two are
compared like for like; :func:`differences` names what differs.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..version import VERSION
from .cpu import cpu
from .libraries import cuda, engines, numba, numpy, torch
from .probe import Facts, guarded

Fingerprint = dict[str, object]

LIBRARIES = ("numpy", "torch", "numba")
"""Sections whose ``version`` is always part of the fingerprint."""

ENGINE_PACKAGES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnx", "onnxruntime"),
    "jax": ("jax", "jaxlib"),
    "openvino": ("openvino",),
}
"""Backend → the engine packages whose versions matter when one of its strategies is chosen."""


def _section(env: Mapping[str, object], name: str) -> Mapping[str, object]:
    value = env.get(name)
    return value if isinstance(value, Mapping) else {}


def fingerprint(env: Mapping[str, object], threads: int | None, tool_version: str) -> Fingerprint:
    """The fingerprint of an ``env`` record (``env.collect()``'s shape) run at ``threads``."""
    processor = _section(env, "cpu")
    devices = _section(env, "cuda").get("devices")
    gpus = [str(d.get("name")) for d in devices if isinstance(d, Mapping)] if isinstance(
        devices, list
    ) else []  # fmt: skip
    ident = [processor.get(k) for k in ("vendor", "family", "model_number", "stepping")]
    facts: Fingerprint = {
        "cpu": processor.get("model"),
        "cpu_id": "/".join(map(str, ident)) if all(v is not None for v in ident) else None,
        "logical_cores": processor.get("logical_cores"),
        "gpus": gpus,
        "threads": threads,
        "deconvbench": tool_version,
        "blas": _section(env, "numpy").get("blas"),
    }
    for name in LIBRARIES:
        facts[name] = _section(env, name).get("version")
    facts.update({k: v for k, v in sorted(_section(env, "engines").items()) if k != "reason"})
    return {k: v for k, v in facts.items() if v is not None}  # unknown: not compared


def current(threads: int | None) -> Fingerprint:
    """This process's fingerprint, by the probes every sidecar's ``env`` uses."""
    probes = {"cpu": cpu, "numpy": numpy, "torch": torch, "cuda": cuda, "numba": numba}
    env: dict[str, Facts] = {name: guarded(probe) for name, probe in probes.items()}
    env["engines"] = guarded(engines)
    return fingerprint(env, threads, VERSION)


def for_backends(facts: Mapping[str, object], backends: set[str]) -> Fingerprint:
    """``facts`` without the versions of engines no strategy of ``backends`` runs on: a plan
    that chose numpy doesn't go stale when openvino is upgraded."""
    unused = {p for b, packages in ENGINE_PACKAGES.items() if b not in backends for p in packages}
    return {k: v for k, v in facts.items() if k not in unused}


def differences(planned: Mapping[str, object], here: Mapping[str, object]) -> list[str]:
    """``"key: planned -> here"`` for every fact of ``planned`` that differs here (a fact
    missing here counts as None)."""
    return [
        f"{key}: {planned[key]!r} -> {here.get(key)!r}"
        for key in planned
        if planned[key] != here.get(key)
    ]
