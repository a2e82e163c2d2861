"""Keeping ``import openvino`` from sending telemetry.

Importing openvino imports its model converter (``openvino.tools.ovc``), which sends a usage
event to Google Analytics through the ``openvino_telemetry`` package: from a child process
forked for the request, counting calls in ``~/intel/``, unless a consent file or ``CI=true``
says no. deconvbench opens no network connection (docs/security.md), writes nothing in the
home directory, and a fork in a process running JAX's or torch's threads risks a deadlock.
The converter falls back to its own no-op stub when ``openvino_telemetry`` cannot be
imported, so the package is marked absent before openvino is first imported.
"""

from __future__ import annotations

import sys

TELEMETRY_MODULE = "openvino_telemetry"


def block_openvino_telemetry() -> None:
    """Make ``import openvino_telemetry`` fail in this process.

    Where other code imported the package first, it is left as it is: what it sent is sent.
    """
    if TELEMETRY_MODULE not in sys.modules:
        sys.modules[TELEMETRY_MODULE] = None  # type: ignore[assignment]  # None blocks the import
