#!/usr/bin/env bash
# Builds the GPU test and benchmark binaries here (no GPU, no CUDA toolkit needed: cudarc loads
# libcuda/NVRTC/cuBLAS/cuSOLVER at run time) and stages them, with the anchor script, in DEST
# (default .gpu8/, an ignored folder) for the device tool's `carry`. Then run there:
#   bash DEST/gpu_run.sh DEST "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.gpu8}
mkdir -p "$DEST"
bins=$(cargo test --release --features gpu --test gpu --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="gpu": print(m["executable"])')
bench=$(cargo bench --features gpu --bench gpu --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="gpu": print(m["executable"])')
strip -o "$DEST/gpu_tests" $(echo "$bins" | tail -1)
strip -o "$DEST/gpu_bench" $(echo "$bench" | tail -1)
cp scripts/gpu_anchors.py scripts/gpu_run.sh "$DEST/"
ls -la "$DEST"
