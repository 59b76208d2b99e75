#!/usr/bin/env bash
# Sweep the strategies' options on the toy-world benchmark; the defaults in executor/ come from
# the best rows (see docs/benchmarks.md). Usage: scripts/tune_strategies.sh [N] [OUT_DIR]
set -euo pipefail
n="${1:-24}"
out="${2:-out/tune}"
bin="${SCENEWRIGHT:-.venv/bin/scenewright}"
mkdir -p "$out"
run() {  # run SETS STRATEGY...
    local sets="$1"
    shift
    local joined
    joined="$(IFS=,; echo "$*")"
    "$bin" bench toyworld --n "$n" --sets "$sets" --strategy "$joined" --quiet \
        --json "$out/$(echo "$sets-$joined" | sed 's/[,:=+]/_/g' | cut -c1-150).json" --grid-dir "$out/grids"
}
run position,binding,counting \
    regional:base_ratio=0.0:inject_fraction=0.4 regional:base_ratio=0.15:inject_fraction=0.4 \
    regional:base_ratio=0.3:inject_fraction=0.4 regional:base_ratio=0.15:inject_fraction=0.25 \
    regional:base_ratio=0.15:inject_fraction=0.6 regional:base_ratio=0.15:inject_fraction=0.8
run position,binding,counting \
    stitch:object_fraction=0.1 stitch:object_fraction=0.15 stitch:object_fraction=0.2 stitch:object_fraction=0.25
run counting numina:reference_fraction=0.25 numina:reference_fraction=0.4 numina:reference_fraction=0.6
run position,binding taca:gamma=1.1 taca:gamma=1.2 taca:gamma=1.5
