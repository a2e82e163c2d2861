"""Keeping ONNX Runtime from collecting telemetry.

ONNX Runtime (1.2x and later, Linux included) starts a 1DS telemetry client when it is
imported: it writes a device id and an event queue (``onnxruntime.db``: the executable's
path, the OS, the CPU, the memory) under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime``
for upload over HTTPS. deconvbench opens no network connection and writes nothing in the home
directory (docs/security.md). ``ORT_DISABLE_TELEMETRY=1`` turns the client off; the library
reads it when it is imported, so it is set before onnxruntime's first import.
"""

from __future__ import annotations

import os

SWITCH = "ORT_DISABLE_TELEMETRY"


def disable_onnxruntime_telemetry() -> None:
    """Set ``ORT_DISABLE_TELEMETRY=1`` unless the user set it (their choice).

    It has no effect where onnxruntime was imported first, by other code.
    """
    os.environ.setdefault(SWITCH, "1")
