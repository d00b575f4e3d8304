#!/usr/bin/env bash
# Reproduce the shipped model from the raw training folder in one command:
#   train -> int8 export with parity check -> install into the package -> record its validation.
#
#   scripts/make-model.sh [DATA_ROOT] [RUN_DIR]      (defaults: ../shared/data/chest_xray, runs/shipped)
#
# Needs `pip install -e '.[train,edge]'`. Deterministic for the seed on one machine: the same data,
# versions and CPU give the same weights (another CPU gives an equivalent model, MODEL_CARD.md).
# Wall time and peak memory are printed at the end (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/chest_xray}
run=${2:-runs/shipped}

source scripts/shipped-recipe.sh  # recipe=(...): the flags, with epochs and seed

[ -e "$run" ] && { echo "error: $run exists; pass another RUN_DIR or remove it" >&2; exit 2; }
mkdir -p "$(dirname "$run")"  # a fresh clone has no runs/ yet (GNU time writes beside the run)
start=$(date +%s)
/usr/bin/time -v -o "$run.fit.time" pneumoscan-train fit "$data" --out "$run" "${recipe[@]}"
/usr/bin/time -v -o "$run.export.time" pneumoscan-export tflite "$run" --out "$run/model-int8.tflite"
install -m 644 "$run/model-int8.tflite" edge_app/models/pneumoscan-int8.tflite
install -m 644 "$run/model-int8.tflite.json" edge_app/models/pneumoscan-int8.tflite.json
python scripts/record_validation.py edge_app/models/pneumoscan-int8.tflite "$data" tests/data/shipped-model-validation.json
peak() { awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2 / 1024}' "$1"; }
echo "made edge_app/models/pneumoscan-int8.tflite ($(stat -c %s edge_app/models/pneumoscan-int8.tflite) bytes) in $(( $(date +%s) - start )) s;" \
     "peak memory: fit $(peak "$run.fit.time"), export $(peak "$run.export.time")"
