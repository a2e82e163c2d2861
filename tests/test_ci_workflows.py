"""The GitHub Actions workflows of docs/ci.md are the files in examples/ci/: the page shows each
word for word, each is valid against GitHub's workflow schema, and each installs as the
README does."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "ci"
WORKFLOWS = sorted(EXAMPLES.glob("*.yml"))
DOC = ROOT / "docs" / "ci.md"
INCLUDED = re.compile(r"<!-- (examples/ci/[\w.-]+\.yml) -->\n```yaml\n(.*?)```\n", re.S)

HAS_CHECKER = importlib.util.find_spec("check_jsonschema") is not None
needs_checker = pytest.mark.skipif(
    not HAS_CHECKER,
    reason="check-jsonschema is not installed (pip install -e '.[dev]', as scripts/setup.sh does)",
)


def _included() -> dict[str, str]:
    return dict(INCLUDED.findall(DOC.read_text(encoding="utf-8")))


def test_the_three_workflows_are_there() -> None:
    assert [p.name for p in WORKFLOWS] == ["gate.yml", "history.yml", "shards.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_docs_show_each_workflow_word_for_word(path: Path) -> None:
    shown = _included()
    name = f"examples/ci/{path.name}"
    assert name in shown, f"docs/ci.md does not include {name}"
    assert shown[name] == path.read_text(encoding="utf-8")


def test_docs_have_no_other_workflow() -> None:
    """Every yaml block of docs/ci.md is one of the files: no inline copy that can drift."""
    text = DOC.read_text(encoding="utf-8")
    assert text.count("```yaml\n") == len(_included()) == len(WORKFLOWS)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_install_as_the_readme_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "scripts/setup.sh" in text
    assert "pip install" not in text  # setup.sh decides torch's build and the extras
    assert "actions/cache@v4" in text and ".venv" in text
    for action in re.findall(r"uses: ([\w.-]+/[\w.-]+)@(\S+)", text):
        assert re.fullmatch(r"v\d+", action[1]), f"{action[0]} is not pinned to a major version"


def test_history_tracks_the_export() -> None:
    text = (EXAMPLES / "history.yml").read_text(encoding="utf-8")
    assert "--format github-action-benchmark -o bench.json" in text
    assert "tool: customSmallerIsBetter" in text and "output-file-path: bench.json" in text


def _check(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@needs_checker
def test_workflows_are_valid_against_githubs_schema() -> None:
    result = _check(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_checker
def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (EXAMPLES / "gate.yml").read_text(encoding="utf-8")
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    assert _check(broken).returncode != 0
