#!/usr/bin/env bash
# Runs on the GPU machine: the GPU tests, our benchmark, then the GPyTorch / PyTorch anchors
# on the same data, writing everything under OUT. Usage: bash gpu_run.sh DIR OUT
# (DIR holds what scripts/gpu_build.sh staged).
set -u
D=${1:-.gpu8}
OUT=${2:-${OUT:-gpu-out}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
date -u +%Y-%m-%dT%H:%MZ >> "$OUT/device.txt"
echo "=== GPU tests"
"$D/gpu_tests" --test-threads=1 2>&1 | tee "$OUT/tests.txt" | tail -25
echo "=== our benchmark"
OUT_DIR="$OUT/bench" "$D/gpu_bench" 2>&1 | tee "$OUT/bench.txt"
echo "=== anchors (GPyTorch, PyTorch) and float64 CPU reference"
python3 "$D/gpu_anchors.py" --data "$OUT/bench/data" --ours "$OUT/bench/ours.json" --reps "${ANCHOR_REPS:-3}" --pred-reps 1 \
  --json "$OUT/anchors.json" 2>&1 | grep -v -i warn | tail -60
