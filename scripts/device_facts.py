"""Print the machine and library facts a GPU result depends on (part of device_check.sh)."""

from __future__ import annotations

import sys

import torch

from deconvbench import registry


def main() -> None:
    print(
        f"python {sys.version.split()[0]} | torch {torch.__version__} | cuda {torch.version.cuda}"
        f" | cudnn {torch.backends.cudnn.version()}"  # type: ignore[no-untyped-call]
    )
    print(f"cuda available: {torch.cuda.is_available()} | devices: {torch.cuda.device_count()}")
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(
            f"device: {p.name} | capability {p.major}.{p.minor} | SMs {p.multi_processor_count}"
            f" | memory {p.total_memory / 2**30:.1f} GiB"
        )
    print(
        f"defaults: cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}"
        f" | matmul.allow_tf32 {torch.backends.cuda.matmul.allow_tf32}"
        f" | cudnn.benchmark {torch.backends.cudnn.benchmark}"
    )
    try:
        import triton  # type: ignore[import-not-found]

        print(f"triton {triton.__version__}")
    except Exception as exc:  # a fact like any other
        print(f"triton: not importable: {exc}")
    for s in registry.strategies():
        if s.backend.startswith("torch"):
            print(f"  {s.name:36s} {s.unavailable_reason() or 'available'}")


if __name__ == "__main__":
    main()
