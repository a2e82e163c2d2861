#!/usr/bin/env bash
# Set up deconvbench in a virtual environment; safe to run again (it only adds what is missing).
#
#   bash scripts/setup.sh                 # creates ./.venv
#   DECONVBENCH_VENV=$VIRTUAL_ENV bash scripts/setup.sh   # install into an environment you already have
#
# torch: an environment that already has torch (a CUDA build, say) keeps it, because the project
# asks for a range (torch>=2.1) that any recent torch satisfies. Only where no torch is installed
# does this script install one first, a CPU build: a machine without a GPU has no use for the
# multi-GB CUDA build an unpinned `pip install torch` would pull. Override with DECONVBENCH_TORCH
# (a pip requirement, e.g. "torch==2.5.1") and DECONVBENCH_TORCH_INDEX (an index URL).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${DECONVBENCH_VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
py="$venv/bin/python"

if ! "$py" -c "import torch" 2>/dev/null; then
    torch_req=${DECONVBENCH_TORCH:-torch==2.13.0}
    index=${DECONVBENCH_TORCH_INDEX:-}
    if [ -z "$index" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
        # PyTorch's CPU-only wheels live on its own index; use it when it answers within 3 s
        # (machines whose pip is set up with a local CPU wheel need nothing more).
        cpu_index=https://download.pytorch.org/whl/cpu
        if "$py" -c "import urllib.request,sys; urllib.request.urlopen('$cpu_index/torch/', timeout=3)" \
            >/dev/null 2>&1; then
            index=$cpu_index
        fi
    fi
    if [ -n "$index" ]; then
        "$py" -m pip install --quiet "$torch_req" --extra-index-url "$index"
    else
        "$py" -m pip install --quiet "$torch_req"
    fi
fi
"$py" -m pip install --quiet -e '.[dev,numba,plot,onnx,onnxruntime,jax,openvino]'
echo "deconvbench is set up in $venv ($("$py" -c 'import torch; print("torch", torch.__version__)'))"

# Check every strategy against the float64 reference on the smoke suite, which also compiles the
# JIT strategies' kernels into their on-disk caches (numba's beside its sources, inductor's in the
# temp folder): on a new machine that is about a minute, which the first `run` then does not pay.
# DECONVBENCH_SETUP_VERIFY=0 skips it.
if [ "${DECONVBENCH_SETUP_VERIFY:-1}" != 0 ]; then
    log=$(mktemp)
    echo "verifying every strategy on the smoke suite (compiling the JIT kernels the first time)"
    if NO_COLOR=1 "$venv/bin/deconvbench" verify --suite smoke >"$log" 2>&1; then
        echo "verified: $(tail -n 1 "$log")"
    else
        cat "$log"
        echo "setup: warning: 'deconvbench verify --suite smoke' failed (above); deconvbench is installed"
    fi
    rm -f "$log"
fi
