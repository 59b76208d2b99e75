#!/usr/bin/env bash
# Measure again the tables `auto` picks from, one per embedded model, into each model's folder
# (src/scenewright/models/*/auto_table.json). About 20 minutes for tiny and 20 to 30 for tiny16
# on a 2-core CPU. Review the diff, then commit the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SCENEWRIGHT:-.venv/bin/scenewright}"
"$bin" bench auto-table --backend tiny --n 20 --quiet
"$bin" bench auto-table --backend tiny16 --n 20 --quiet \
  --strategy vanilla,taca,regional,numina,stitch,stitch+taca
