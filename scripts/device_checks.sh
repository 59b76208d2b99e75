#!/usr/bin/env bash
# The GPU checks the open issues ask for, as one prepared run for a lent GPU machine (one H200,
# 15 minutes of device time in all, 10 minutes a command). Run scripts/device_wheels.sh here
# first, then hand the device tool, with carry [".whl"]:
#
#   bash scripts/device_checks.sh models     # issue 13: bench models, FLUX.1-dev and SD3.5-medium
#   bash scripts/device_checks.sh train      # issue 16: continue tiny16 on the GPU (about 4 min)
#   bash scripts/device_checks.sh more       # issue 13: flux-schnell and sd3.5-large
#
# Everything lands in $OUT (the device tool's folder; out/device elsewhere), at most 8 files:
# models.json, models.png, models.log; toyworld16-export.tgz, train.log. Back here, judge the
# continued model with `scenewright bench toyworld --backend <unpacked export> --n 100`.
#
# A dry run on this CPU, to catch mistakes before spending device time (about 2 minutes):
#   DEVICE=cpu SCALE=small TRAIN_STEPS=2 TRAIN_BATCH=8 TRAIN_WORKERS=0 bash scripts/device_checks.sh all
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-models}"
OUT="${OUT:-out/device}"
DEVICE="${DEVICE:-cuda}"
SCALE="${SCALE:-full}"
TRAIN_STEPS="${TRAIN_STEPS:-3000}"
TRAIN_BATCH="${TRAIN_BATCH:-256}"
TRAIN_WORKERS="${TRAIN_WORKERS:-14}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
py="${PYTHON:-python3}"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$py" -c "import diffusers, pydantic, inflect" 2> /dev/null; then  # the GPU machine: carried wheels
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
"$py" -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__,
'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"

bench_models() {  # $1: comma-separated models, $2: file stem
  local precision=()
  [ "$DEVICE" = cuda ] && precision=(--dtype bfloat16)
  "$py" -m scenewright bench models --models "$1" --scale "$SCALE" --device "$DEVICE" "${precision[@]}" \
    --json "$OUT/$2.json" --chart "$OUT/$2.png" --overwrite 2>&1 | tee "$OUT/$2.log"
}

train_tiny16() {
  local run=runs/device-toyworld16 precision=fp32
  [ "$DEVICE" = cuda ] && precision=tf32
  # The shipped recipe (src/scenewright/models/toyworld16/TRAINING.md) continued from the shipped
  # weights: a short warm-up for the fresh optimizer, the decay over the last 30% of the steps.
  "$py" -m scenewright train-toyworld --out "$run" --init-from src/scenewright/models/toyworld16 \
    --device "$DEVICE" --precision "$precision" --workers "$TRAIN_WORKERS" \
    --steps "$TRAIN_STEPS" --batch "$TRAIN_BATCH" --lr 0.0005 --warmup 100 \
    --decay-steps $((TRAIN_STEPS * 3 / 10)) --t-mean 0.5 --simple-fraction 0.3 --empty-fraction 0.05 \
    --ema 0.999 --seed 4 --save-every 500 --model-patch 4 --model-default-guidance-max-sigma 0.8 \
    --model-default-background-prompt "a black background" 2>&1 | tee "$OUT/train.log"
  tar czf "$OUT/toyworld16-export.tgz" -C "$run" export
}

case "$stage" in
  models) bench_models flux-dev,sd3.5-medium models ;;
  more) bench_models flux-schnell,sd3.5-large models-more ;;
  train) train_tiny16 ;;
  all) bench_models flux-dev,sd3.5-medium models; train_tiny16 ;;
  *) echo "unknown stage '$stage': use models, more, train or all" >&2; exit 2 ;;
esac
ls -l "$OUT"
