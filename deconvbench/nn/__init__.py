"""Drop-in transposed-convolution layers that run a plan's fastest verified strategies.

``deconvbench plan`` writes a plan: for each (problem, device, pass) measured, the strategy
that beat torch's native one. This package runs it inside a torch model::

    import deconvbench.nn as dnn

    model = dnn.apply_plan(model, "plan.json")    # every nn.ConvTranspose{1,2,3}d, in place
    # or: layer = dnn.ConvTranspose2d(512, 256, 4, 2, 1, bias=False, plan="plan.json")

docs/nn.md is the user's guide (fallbacks, copies, fingerprint, no_grad, autocast,
torch.compile, overheads).

Modules:

- ``layers``: ``ConvTranspose{1,2,3}d``, ``apply_plan``, ``describe``, ``load_plan``.
- ``dispatch``: one ``Dispatcher`` per plan: fingerprint check, per-shape routes, fallbacks.
- ``function``: the eager call: native, a runner, or the autograd Function joining two.
- ``ops``: the call as a ``torch.library`` custom op, for ``torch.compile``.
- ``runners``: torch strategies on tensors (native variants, torch-op algorithms, compiled).
- ``hosted``: numpy, numba, JAX and plugin strategies on numpy views of the tensors.
- ``tensors``: tensor/numpy conversion without copies, and when a copy pays.
"""

from __future__ import annotations

from .dispatch import Dispatcher, PlanMismatchWarning, dispatcher_for
from .layers import (
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    PlanLike,
    apply_plan,
    describe,
    load_plan,
)

__all__ = [
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Dispatcher",
    "PlanLike",
    "PlanMismatchWarning",
    "apply_plan",
    "describe",
    "dispatcher_for",
    "load_plan",
]
