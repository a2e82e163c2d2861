"""The installed backend plugins: each distribution that declares entry points in the group
``deconvbench.backends`` (deconvbench's own built-ins aside), from its metadata alone.

Nothing is imported: the facts say which code a run's plugin strategies came from (name,
version, where it is installed, and for a local or editable install the source it was
installed from), so a result can be traced to a plugin release as it is to deconvbench's.
"""

from __future__ import annotations

import json
from importlib.metadata import Distribution, entry_points
from pathlib import Path

from .probe import Facts

GROUP = "deconvbench.backends"
"""The entry-point group (``registry.GROUP``; env sits below the registry, a test keeps the
two equal)."""

OWN = "deconvbench"


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _source(dist: Distribution) -> dict[str, object] | None:
    """PEP 610's ``direct_url.json``: the URL a local, VCS or editable install came from."""
    try:
        text = dist.read_text("direct_url.json")
        data = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "url" not in data:
        return None
    source: dict[str, object] = {"url": data["url"]}
    dir_info = data.get("dir_info")
    if isinstance(dir_info, dict) and "editable" in dir_info:
        source["editable"] = bool(dir_info["editable"])
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and "commit_id" in vcs:
        source["commit"] = vcs["commit_id"]
    return source


def distributions() -> list[Facts]:
    """One record per plugin distribution: ``name``, ``version``, ``location`` (where it is
    installed), ``entry_points`` (entry point name → ``module:function``) and, when pip
    recorded one, ``source`` (``url``, ``editable``, ``commit``). Sorted by name."""
    found: dict[str, Facts] = {}
    for ep in entry_points(group=GROUP):
        dist = ep.dist
        name = dist.name if dist is not None else None
        if name is not None and _normalized(name) == OWN:
            continue
        key = name or "(unknown distribution)"
        if key not in found:
            record: Facts = {"name": name, "version": None, "location": None}
            if dist is not None:
                record["version"] = dist.version
                record["location"] = str(Path(str(dist.locate_file(""))).resolve())
                if (source := _source(dist)) is not None:
                    record["source"] = source
            record["entry_points"] = {}
            found[key] = record
        points = found[key]["entry_points"]
        assert isinstance(points, dict)
        points[ep.name] = ep.value
    return [found[k] for k in sorted(found)]


def plugins() -> Facts:
    """The ``plugins`` section of ``deconvbench env`` and of every run's sidecar."""
    return {"distributions": distributions()}
