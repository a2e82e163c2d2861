"""The package's layout, as docs/design.md states it: one-way imports, small modules.

Every import counts, at module level or inside a function, under ``TYPE_CHECKING`` or not:
a lazy or type-only import still ties two modules together, in both directions when they
import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "deconvbench"
MAX_LINES = 450
MAX_TOP_LEVEL_MODULES = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (before its imported names)."""
    if node.level == 0:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports: a name imported from a package is its
    submodule when it is one, else the package itself."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, path.name == "__init__.py", node)
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.add(full if full in known else source)
    return (found & known) - {name}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_lazy_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .b import X\n"
        "def f():\n    from . import c\n    from .d.e import g\n"
    )
    known = {"p.b", "p.c", "p.d.e", "p.m"}
    assert imports("p.m", source, known) == {"p.b", "p.c", "p.d.e"}


def test_no_import_cycles() -> None:
    edges = graph()
    assert sum(len(v) for v in edges.values()) > 100  # the graph really was read
    assert cycles(edges) == []


LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "errors version",
        "problem",
        "reference backends cases env importers",
        "registry harness",
        "api results conformance",
        "run analysis nn",
        "render",
        "cli",
        "__init__ __main__",
    )
)
"""The stages of docs/design.md's package map, lowest first: a module imports only from its
own package or from a lower layer, so packages of one layer stay independent."""


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in modules()}
    assert packages == set().union(*LAYERS)


def test_imports_go_down_the_layers() -> None:
    upward = sorted(
        f"{a} -> {b}"
        for a, deps in graph().items()
        for b in deps
        if package_of(a) != package_of(b)
        and layer_of(package_of(b)) >= layer_of(package_of(a))
    )
    assert upward == []


def test_nothing_inside_imports_the_public_package() -> None:
    """``deconvbench/__init__`` is the users' API; the package's own modules never import it
    (commands import ``cli.app``, the version comes from ``version``)."""
    importers = sorted(name for name, deps in graph().items() if "deconvbench" in deps)
    assert importers == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_the_size_limit(name: str) -> None:
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_few_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_the_old_path_of_the_strategy_interface_still_works_and_warns() -> None:
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from deconvbench.backends.base import Strategy\n"
        "from deconvbench.backends import Strategy as New\n"
        "assert Strategy is New\n"
        "assert [w.category.__name__ for w in caught] == ['DeprecationWarning'], caught\n"
        "assert 'from deconvbench.backends' in str(caught[0].message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_package_itself_never_uses_the_old_path() -> None:
    users = sorted(n for n, deps in graph().items() if "deconvbench.backends.base" in deps)
    assert users == []
