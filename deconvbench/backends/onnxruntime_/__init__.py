"""The ``onnxruntime`` backend: ONNX Runtime's CPU execution provider.

* ``native`` (``native.py``): a one-node ConvTranspose model forward; backward, the Conv
  graph a training framework runs, three gradients in one session call.
* ``_graphs.py``: the ONNX models, built in memory with ``onnx.helper``.
* ``_session.py``: session options (threads, optimisation level), the opset, IOBinding.
* ``_common.py``: names, dtypes, shapes and the availability check, free of onnx.
* ``_offline.py``: turns ONNX Runtime's telemetry off before its first import.

Nothing here imports onnx or onnxruntime until a strategy prepares (``_graphs`` and
``_session`` are imported there): the registry loads this package on every start, and the
availability check only looks the packages up (``importlib.util.find_spec``).
"""

from __future__ import annotations

from ..strategy import Strategy
from ._offline import disable_onnxruntime_telemetry
from .native import Native


def strategies() -> list[Strategy]:
    """Entry point of the ``onnxruntime`` backend (group ``deconvbench.backends``)."""
    return [Native()]


disable_onnxruntime_telemetry()  # before anything here imports onnxruntime
