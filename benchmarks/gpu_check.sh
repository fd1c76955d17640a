#!/usr/bin/env bash
# The GPU checks of the fused kernels, in one run of under 10 minutes on a
# machine with an NVIDIA GPU, PyTorch and JAX with CUDA, and no network:
#
# 1. the fused path's tests with the real cuDNN (tests/test_fused.py, its
#    `gpu` cases: a training call's values and gradients against the loop,
#    the gradient's cuts, inference against Keras's LSTM, use_cudnn=True),
#    then Keras's own GRU test that PyTorch's cuDNN kernel is reached;
# 2. PyTorch's r_lstm and truncated_lstm steps with cuDNN off, at 784 and
#    4,096 steps (their lines in tests.log), against
# 3. the benchmark there: r_lstm, truncated_lstm, keras_full_bp (Keras's
#    cuDNN LSTM) and forward_floor at 784, 4,096, 16,384 and 65,536 steps,
#    time per step and peak GPU memory, on PyTorch, then JAX while time is
#    left (TensorFlow's wheel, 600 MB, does not travel to such a machine).
#
# Keras and what it needs beyond such a machine's packages travel as
# wheels for its Python (3.12 on the machines this project is lent), made
# where pip reaches PyPI, from the repository's root:
#
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux_2_27_x86_64 \
#         --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 optree==0.20.0 namex==0.1.0
#
# (2.8 MB; `.whl/` is ignored by git.)
#
# Then, on the GPU machine, from the repository's root (with `.whl`):
#
#     bash benchmarks/gpu_check.sh OUTPUT_DIR
#
# It writes OUTPUT_DIR/tests.log, OUTPUT_DIR/results_<backend>/results.md
# (and .json) and OUTPUT_DIR/nvidia-smi.txt.
set -uo pipefail
OUT=${1:-gpu_check}
mkdir -p "$OUT"
START=$(date +%s)
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/keras_site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/keras_site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

# 1. The tests (about 2 minutes).
for backend in torch jax; do
    echo "== tests on $backend" | tee -a "$OUT/tests.log"
    KERAS_BACKEND=$backend timeout 150 python3 -m pytest -q -rs -p no:cacheprovider \
        tests/test_fused.py tests/keras_conformance/test_gru.py \
        -k "gpu or use_cudnn or cudnn_dispatch" 2>&1 | tail -25 | tee -a "$OUT/tests.log"
done

# 2. Where PyTorch's r-LSTM step goes on the GPU (about 0.35 s at every
#    length on an H100, 43 x the truncated LSTM's): the same step with
#    cuDNN off, to set against it on (3.), at 784 and 4,096 steps.
KERAS_BACKEND=torch timeout 120 python3 -m benchmarks.train_step --backends=torch \
    --configs=r_lstm,truncated_lstm --use_cudnn=false --lengths=784,4096 --repetitions=3 \
    --time_limit=40 --output_dir="$(mktemp -d)" 2>&1 | grep "torch " | tee -a "$OUT/tests.log"

# 3. The benchmark, each backend while time is left (BUDGET seconds in all,
# 9 minutes unless set); each result line goes to tests.log as it comes.
for backend in torch jax; do
    left=$((${BUDGET:-540} - $(date +%s) + START))
    # PyTorch leaves JAX two minutes.
    [ "$backend" = torch ] && left=$((left - 120))
    if [ "$left" -lt 60 ]; then
        echo "== $backend: not measured, $left s left" | tee -a "$OUT/tests.log"
        continue
    fi
    KERAS_BACKEND=$backend timeout "$left" python3 -m benchmarks.train_step \
        --backends="$backend" --configs=r_lstm,truncated_lstm,keras_full_bp,forward_floor \
        --lengths="${LENGTHS:-784,4096,16384,65536}" --repetitions=3 --time_limit=60 \
        --output_dir="$OUT/results_$backend" 2>&1 | grep -v "^I0000\|^W0000" | tee -a "$OUT/tests.log"
done
echo "done in $(($(date +%s) - START)) s"
