"""What every probe of the machine shares: its facts' type, running a short command, and
turning a failure into a reason."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

Facts = dict[str, object]
TIMEOUT_S = 3.0


def run(args: list[str], cwd: Path | None = None) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def guarded(probe: Callable[[], Facts]) -> Facts:
    """What a probe finds, or the error that stopped it as the reason."""
    try:
        return probe()
    except Exception as e:  # a probe must never cost the user their run
        return {"reason": f"could not be probed: {type(e).__name__}: {e}"}


def missing(reason: str, *keys: str) -> Facts:
    return {**dict.fromkeys(keys), "reason": reason}
