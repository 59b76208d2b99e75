#!/usr/bin/env bash
# The figures in docs/benchmarks.md, in one go (about 12 minutes on two CPU cores):
# the embedded model's bars, every strategy on the four compositional sets, and refine.
# Usage: scripts/bench_all.sh [OUT_DIR] [N]
set -euo pipefail
out="${1:-out/final}"
n="${2:-50}"
bin="${SCENEWRIGHT:-.venv/bin/scenewright}"
mkdir -p "$out"
"$bin" bench toyworld --strategy vanilla --n 100 --sets single,two --quiet \
    --json "$out/vanilla.json" --grid-dir "$out/grids" | tee "$out/vanilla.md"
"$bin" bench toyworld --n "$n" --sets counting,position,binding,complex --quiet \
    --strategy vanilla,regional,numina,stitch,stitch:object_pass=box,taca,stitch+taca \
    --json "$out/strategies.json" --grid-dir "$out/grids" | tee "$out/strategies.md"
"$bin" bench toyworld --n "$n" --sets position,counting --quiet \
    --strategy refine:verifier=attention,refine \
    --json "$out/refine.json" --grid-dir "$out/grids" | tee "$out/refine.md"
