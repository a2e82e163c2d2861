#!/usr/bin/env bash
# GPU checks for the torch-cuda backend, run on the device machine from the repository root.
#
#   OUT=/some/dir bash scripts/device_check.sh
#
# Every step's output goes to "$OUT/NN-name.log" and its exit status to "$OUT/status.txt";
# a failing step never stops the next one (no `set -e`), and each step has a time limit so
# the whole script stays near four minutes. The script's own exit status is the number of
# failed steps (0: all passed).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
: >"$OUT/status.txt"
failures=0
started=$(date +%s)

# Inductor's compile cache outside the repository copy.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/deconvbench-inductor}
export PYTHONDONTWRITEBYTECODE=1
export HYPOTHESIS_PROFILE=default   # 20 random problems per strategy and pass (4 for compiled)
PYTEST=(python3 -m pytest -q -p no:cacheprovider -o addopts=-ra)

step() {  # step NAME LIMIT_SECONDS COMMAND...: run, log, record the status, carry on
    local name=$1 limit=$2
    shift 2
    local log="$OUT/$name.log" t0=$SECONDS
    echo "=== $name (limit ${limit}s): $*" | tee "$log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - t0))
    [ "$rc" -eq 124 ] && echo "*** $name timed out after ${limit}s" | tee -a "$log"
    echo "$name rc=$rc ${took}s" | tee -a "$OUT/status.txt"
    [ "$rc" -eq 0 ] || failures=$((failures + 1))
}

if [ -z "${DEVICE_CHECK_SKIP_INSTALL:-}" ]; then  # set it for a dry run in a ready environment
    step 00-install 120 python3 -m pip install --no-deps --no-build-isolation -q -e .
fi

step 01-facts 60 bash -c 'nvidia-smi; python3 scripts/device_facts.py'

# Correctness: the conformance suite on every torch-cuda strategy but compiled (quick) ...
step 02-conformance 150 "${PYTEST[@]}" --maxfail=10 tests/test_conformance.py -k "torch-cuda and not compiled"
# ... the backend's own tests, CUDA ones included (TF32 off, flags restored, half precision) ...
step 03-backend-tests 150 "${PYTEST[@]}" tests/test_torch_backend.py
# ... and compiled on a subset (every new shape costs a compilation).
step 04-conformance-compiled 120 "${PYTEST[@]}" --maxfail=5 tests/test_conformance.py \
    -k "torch-cuda/compiled and (random or reduced or stride-divides-kernel or 3d or 1d or groups-2 or dilation-and-stride)"

# Speed: DCGAN layers at batch 16, CUDA events, interleaved. The cuDNN-autotuned variant
# runs in a process of its own (cuDNN's plan cache ignores the benchmark flag).
step 05-bench-dcgan 150 python3 scripts/device_bench.py --rounds 30 --csv "$OUT/dcgan-torch-cuda.csv"
step 06-bench-dcgan-cudnn-benchmark 60 python3 scripts/device_bench.py --rounds 30 \
    --impl torch-cuda/native-cudnn-benchmark --csv "$OUT/dcgan-torch-cuda-cudnn-benchmark.csv"

# ===================================================================================
# LEAD: the `deconvbench run` benchmark goes here, for example
#   step 07-run-dcgan 180 deconvbench run --suite dcgan --impl 'torch-cuda/*' \
#       --threads 16 -o "$OUT/dcgan.csv" --overwrite
# ===================================================================================

echo "=== done in $(($(date +%s) - started))s, $failures failed step(s)"
cat "$OUT/status.txt"
exit "$failures"
