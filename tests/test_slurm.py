"""The Slurm job array of docs/ci.md, for real: a one-node Slurm (slurmctld, slurmd, munge) started
here from a generated minimal slurm.conf, the documented script submitted with 2 shards, the
parts merged with ``deconvbench merge``, and the merged file holding exactly the rows of an
unsharded run.

It needs Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them) and root (slurmd
runs jobs as their user); without them, or when the daemons don't start, it skips saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deconvbench.results.reader import read_results
from deconvbench.results.schema import KEY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ci.md"
BIN = Path(sys.executable).parent  # the venv's deconvbench
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sinfo", "scontrol")
CASES = [
    "in_channels=2,out_channels=2,input=4x4,kernel=3,stride=2,padding=1",
    "in_channels=2,out_channels=3,input=5,kernel=4,stride=2",
    "in_channels=3,out_channels=2,input=3x3,kernel=2,stride=1",
]
SMALL_RUN = "--impl numpy/direct --budget 0.02 --min-samples 3 " + " ".join(
    f"--case {c}" for c in CASES
)

pytestmark = pytest.mark.slow


def _find(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return f"no {path.name}"


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(pid_file: Path) -> None:
    """End a daemon this test started, by the id in its pid file."""
    pid = _pid(pid_file)
    if pid is None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if not _alive(pid):
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _config(d: Path, host: str) -> str:
    cpus = os.cpu_count() or 1
    return f"""\
ClusterName=deconvbench
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.sock
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _start(d: Path) -> dict[str, str]:
    """munged, slurmctld and slurmd on this machine; the clients' environment. Skips (with
    the daemon's last log lines) when one does not come up."""
    (d / "state").mkdir()
    (d / "spool").mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munged = [
        _find("munged"), "--force", f"--key-file={key}", f"--socket={d}/munge.sock",
        f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed",
    ]  # fmt: skip
    if subprocess.run(munged, capture_output=True, timeout=30).returncode != 0:
        pytest.skip(f"munged did not start: {_tail(d / 'munged.log')}")
    conf = d / "slurm.conf"
    conf.write_text(_config(d, socket.gethostname().split(".")[0]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for daemon in ("slurmctld", "slurmd"):
        started = subprocess.run(
            [_find(daemon), "-f", str(conf)], capture_output=True, text=True, env=env, timeout=60
        )  # fmt: skip
        if started.returncode != 0:
            why = started.stderr.strip() or _tail(d / f"{daemon}.log")
            pytest.skip(f"{daemon} did not start: {why}")
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        state = subprocess.run(
            [_find("sinfo"), "-h", "-o", "%t"], capture_output=True, text=True, env=env, timeout=30
        ).stdout.strip()  # fmt: skip
        if state == "idle":
            return env
        time.sleep(0.5)
    pytest.skip(
        f"the Slurm node is {state or 'unknown'}, not idle, after 60 s: "
        f"slurmctld: {_tail(d / 'slurmctld.log')}; slurmd: {_tail(d / 'slurmd.log')}"
    )


@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    if sys.platform != "linux":
        pytest.skip("Slurm runs on Linux")
    missing = [name for name in (*DAEMONS, *CLIENTS) if _find(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("slurmd must run as root to start jobs")
    # a short directory: munge's socket path must fit a sockaddr_un (108 bytes)
    d = Path(tempfile.mkdtemp(prefix="db-slurm-", dir="/tmp"))
    try:
        env = _start(d)
        yield env
    finally:
        if (d / "slurm.conf").exists():
            subprocess.run(
                [_find("scontrol") or "scontrol", "shutdown"], capture_output=True, timeout=30,
                env={**os.environ, "SLURM_CONF": str(d / "slurm.conf")},
            )  # fmt: skip
        for daemon in ("slurmd", "slurmctld", "munged"):
            _stop(d / f"{daemon}.pid")
        shutil.rmtree(d, ignore_errors=True)


def _recipe() -> tuple[str, str]:
    """docs/ci.md's job-array script, and its merge line (the comment after the array)."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    scripts = [b for b in blocks if "#SBATCH" in b]
    assert len(scripts) == 1, "docs/ci.md should have one Slurm script"
    script = scripts[0]
    merge = re.search(r"# after the array: (deconvbench merge .*)", script)
    assert merge, "the Slurm script should end with its merge line"
    return script, merge.group(1)


def _sub(text: str, pattern: str, replacement: str) -> str:
    """One edit of the documented script; the script must still read as the test expects."""
    new, count = re.subn(pattern, replacement, text)
    assert count, f"docs/ci.md's Slurm script no longer has {pattern!r}"
    return new


def _small(script: str, shards: int) -> str:
    """The documented script, with ``shards`` tasks, one core each, and a small run."""
    script = _sub(script, r"--array=1-\d+", f"--array=1-{shards}")
    script = _sub(script, r"--cpus-per-task=\d+", "--cpus-per-task=1")
    script = _sub(script, r"--threads \d+", "--threads 1")
    script = _sub(script, r'(\$\{SLURM_ARRAY_TASK_ID\})/\d+"', rf'\1/{shards}"')
    return _sub(script, r"--suite \S+", SMALL_RUN)


def test_the_documented_job_array_merges_into_the_unsharded_run(
    slurm: dict[str, str], tmp_path: Path
) -> None:
    script, merge = _recipe()
    job = tmp_path / "shards.sbatch"
    job.write_text(_small(script, 2))
    env = {**slurm, "PATH": f"{BIN}{os.pathsep}{slurm.get('PATH', '')}", "NO_COLOR": "1"}
    started = time.monotonic()
    submitted = subprocess.run(
        [_find("sbatch"), "--wait", f"--chdir={tmp_path}", f"--output={tmp_path}/slurm-%A_%a.out",
         str(job)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    logs = "\n".join(f"{p.name}: {p.read_text()[-2000:]}" for p in tmp_path.glob("slurm-*.out"))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr + logs
    parts = sorted(tmp_path.glob("shard-*.csv"))
    assert [p.name for p in parts] == ["shard-1.csv", "shard-2.csv"], logs
    merge = _sub(merge, r"-o \S+", "-o merged.csv")
    merged = subprocess.run(
        ["bash", "-c", merge], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    sys.stderr.write(f"slurm: 2 shards ran and merged in {time.monotonic() - started:.1f} s\n")

    whole = subprocess.run(
        ["deconvbench", "run", *SMALL_RUN.split(), "--threads", "1", "-o", "whole.csv"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stderr

    def keys(path: Path) -> list[tuple[str, ...]]:
        frame = read_results(path)
        assert (frame["status"] == "ok").all()
        return [tuple(str(v) for v in r) for r in frame[list(KEY_COLUMNS)].itertuples(index=False)]

    shard_keys = [set(keys(p)) for p in parts]
    assert all(shard_keys) and not shard_keys[0] & shard_keys[1]  # both ran, disjoint
    merged_keys, whole_keys = keys(tmp_path / "merged.csv"), keys(tmp_path / "whole.csv")
    assert len(merged_keys) == len(set(merged_keys))
    assert set(merged_keys) == set(whole_keys) and len(merged_keys) == len(whole_keys)
