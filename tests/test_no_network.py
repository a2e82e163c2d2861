"""Nothing opens a network connection (docs/security.md, "No network").

Dynamic: the main commands run in-process (list, suites, env, verify, run, compare, merge,
report with plots) with every socket entry that connects or resolves a name replaced by one
that records the call and fails it; none may be called, including by ``env`` for its own
host name (``socket.gethostname``/``platform.node`` read the kernel's name: no lookup).
Child processes are recorded too and must be local tools only.

Static: the package's source imports no networking module but ``socket`` in ``run/types.py``,
which uses nothing of it but ``gethostname``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import deconvbench
from deconvbench import cli
from deconvbench.results.writer import ResultWriter

from helpers import row

PACKAGE = Path(deconvbench.__file__).parent
CASE = "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1"
FAST = ["--budget", "0.01", "--min-samples", "3", "--threads", "1"]

RESOLVERS = (
    "create_connection", "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_ex",
    "gethostbyaddr", "getfqdn",
)  # fmt: skip
SOCKET_METHODS = ("connect", "connect_ex", "sendto", "sendmsg")
LOCAL_TOOLS = {
    "git": {"rev-parse", "status"}, "nvidia-smi": None, "sysctl": None, "uname": None,
    "fc-list": None,
}  # fmt: skip
"""Child processes the package (or a library for it) may start; None: any arguments. git
only reads the checkout; platform.processor runs uname -p; matplotlib runs fontconfig's
fc-list, which reads the local font configuration, when it builds its font cache (the first
plot on a machine, or with an empty cache)."""

NETWORK_MODULES = {
    "socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib",
    "smtplib", "poplib", "imaplib", "nntplib", "telnetlib", "xmlrpc", "socketserver",
    "asyncio", "websocket", "websockets", "webbrowser", "grpc", "zmq", "paramiko",
}  # fmt: skip
KNOWN_IMPORTS = {("run/types.py", "socket")}
"""The run's ``host`` column: ``socket.gethostname()``, the kernel's node name."""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail (and record) every connection or name lookup; record every child process."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., object]:
        def refused(*args: object, **kwargs: object) -> object:
            attempts.append(f"{name}{args[-2:] if args else ''}")
            raise OSError(f"network disabled by the test: {name}")

        return refused

    for name in RESOLVERS:
        monkeypatch.setattr(socket, name, refuse(f"socket.{name}"))
    for name in SOCKET_METHODS:
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.socket.{name}"))

    real_run = subprocess.run

    def local_only(command: list[str], *args: object, **kwargs: object) -> object:
        tool, rest = Path(command[0]).name, command[1:]
        allowed = LOCAL_TOOLS.get(tool, set())
        if allowed is not None and (not rest or rest[0] not in allowed):
            attempts.append(f"subprocess {command}")
        return real_run(command, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", local_only)
    monkeypatch.setenv("NO_COLOR", "1")
    yield attempts
    assert attempts == [], f"network (or unknown child process) used: {attempts}"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args), env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def test_socket_entries_are_really_replaced(offline: list[str]) -> None:
    """The fixture bites: a connection attempt is refused and recorded."""
    with pytest.raises(OSError, match="network disabled"):
        socket.create_connection(("example.org", 80), timeout=0.1)
    with socket.socket() as s, pytest.raises(OSError, match="network disabled"):
        s.connect(("127.0.0.1", 9))
    assert len(offline) == 2
    offline.clear()


def test_info_commands_stay_offline(offline: list[str]) -> None:
    assert "numpy/direct" in invoke("list", "--format", "json")
    assert "smoke" in invoke("suites")
    facts = invoke("env", "--format", "json")
    assert socket.gethostname() in facts  # the host is named, without a lookup


def test_verify_run_compare_merge_report_stay_offline(offline: list[str], tmp_path: Path) -> None:
    invoke("verify", "--case", CASE, "--impl", "numpy/direct")
    ran = tmp_path / "run.csv"
    invoke("run", "--case", CASE, "--impl", "numpy/*", "-o", str(ran), *FAST)
    other = tmp_path / "other.csv"
    with ResultWriter(other, "new") as writer:
        writer.write(row("numpy/direct", case="elsewhere", samples=[1.0, 1.1, 0.9]))
    invoke("compare", str(ran), str(ran))
    invoke("compare", str(ran), "--baseline-impl", "numpy/direct")
    invoke("merge", str(ran), str(other), "-o", str(tmp_path / "merged.csv"))
    invoke("report", str(ran), "--plot", str(tmp_path / "plots"))
    assert any((tmp_path / "plots").glob("*.png"))


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_source_imports_no_networking_module_but_the_known_one() -> None:
    found: set[tuple[str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module in _imports(tree) & NETWORK_MODULES:
            found.add((str(path.relative_to(PACKAGE)), module))
    assert found == KNOWN_IMPORTS


def test_the_socket_module_is_used_for_the_host_name_only() -> None:
    tree = ast.parse((PACKAGE / "run" / "types.py").read_text(encoding="utf-8"))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "socket"
    }
    assert used == {"gethostname"}


ENGINES = ("onnxruntime", "jax", "openvino")

WATCH_FORKS = """
import os, sys
forks = []
real_fork = os.fork
def recording_fork():
    forks.append(1)
    return real_fork()
os.fork = recording_fork
from deconvbench import cli
try:
    cli.app(sys.argv[1:], prog_name="deconvbench")
except SystemExit as done:
    assert not done.code, done.code
print("forks", len(forks), "telemetry", sys.modules.get("openvino_telemetry"))
"""


def test_engines_fork_nothing_and_write_nothing_home(tmp_path: Path) -> None:
    """openvino's import sends telemetry from a forked child and counts uses in ~/intel
    unless its package is blocked; no engine may fork or write in the home directory."""
    installed = [e for e in ENGINES if importlib.util.find_spec(e) is not None]
    if not installed:
        pytest.skip("no engine extra (onnxruntime, jax, openvino) is installed")
    home = tmp_path / "home"
    home.mkdir()
    impls = [arg for engine in installed for arg in ("--impl", f"{engine}/native")]
    command = [sys.executable, "-c", WATCH_FORKS, "run", "--case", CASE, *impls]
    command += ["-o", str(tmp_path / "run.csv"), "--rounds", "1", *FAST]
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1"}
    env.pop("CI", None)  # openvino's telemetry stays quiet under CI=true: test without it
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "forks 0 telemetry None" in done.stdout, done.stdout[-2000:]
    assert list(home.iterdir()) == []
