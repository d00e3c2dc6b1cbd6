#!/usr/bin/env bash
# The issue's "done when" run: train on CamVid for 20 minutes on the CPU, then score the
# best checkpoint on the 101 val images with `workbench evaluate` (the same code path as
# the app's metrics panel). Logs the load average every 30 s, because the dev box is shared.
#
#   benchmarks/camvid_cpu_run.sh [OUT_DIR] [extra `workbench train` options...]
#
# STEPS=N replaces the time budget with a step budget (--steps N): on a shared machine
# 20 minutes measures the load, a step count measures the recipe.
# Writes OUT_DIR/camvid.safetensors (never inside the repo), train.log, eval.json, load.log.
# Run from the repository root; CamVid is expected at ../shared/camvid.
set -euo pipefail
OUT=${1:-/tmp/camvid_run}
shift || true
CAMVID=${CAMVID:-../shared/camvid}
PY=${PY:-.venv/bin/python}
MINUTES=${MINUTES:-20}
if [ -n "${STEPS:-}" ]; then BUDGET=(--steps "$STEPS"); else BUDGET=(--minutes "$MINUTES"); fi
mkdir -p "$OUT"
( while true; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done ) > "$OUT/load.log" &
LOADPID=$!
trap 'kill $LOADPID 2>/dev/null || true' EXIT
start=$(date +%s)
"$PY" -m workbench train "$CAMVID/train" --masks "$CAMVID/trainannot" \
    --val-images "$CAMVID/val" --val-masks "$CAMVID/valannot" --classes "$CAMVID/classes.json" \
    "${BUDGET[@]}" --device cpu --out "$OUT/camvid.safetensors" "$@" 2>&1 | tee "$OUT/train.log"
end=$(date +%s)
echo "train wall time: $((end - start)) s" | tee -a "$OUT/train.log"
"$PY" -m workbench evaluate "$CAMVID/val" --model "$OUT/camvid.safetensors" --gt "$CAMVID/valannot" \
    --device cpu --json > "$OUT/eval.json"
echo "evaluate: $(head -c 300 "$OUT/eval.json")"
