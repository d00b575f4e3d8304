#!/usr/bin/env bash
# The configurations compared for the shipped model (MODEL_CARD.md lists every result, losers too).
# Usage: scripts/experiments.sh DATA_ROOT OUT_DIR [NAME...]   (default: all, one after another)
set -euo pipefail
data=${1:?DATA_ROOT}; out=${2:?OUT_DIR}; shift 2
declare -A cfg=(
  [base128]="--image-size 128"
  [blur128]="--image-size 128 --blur-probability 0.5 --label-smoothing 0.1"
  [raw128]="--image-size 128 --normalization none"
  [small96]="--image-size 96 --blur-probability 0.5 --label-smoothing 0.1"
  [strong128]="--image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --rotation 0.08 --zoom 0.2 --shift 0.1 --contrast 0.3 --dropout 0.5"
  [slim128]="--image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --rotation 0.08 --zoom 0.2 --shift 0.1 --contrast 0.3 --filters 8,16,32,64,128"
  [eq128]="--image-size 128 --normalization equalize --blur-probability 0.5 --label-smoothing 0.1"
  [eqstrong128]="--image-size 128 --normalization equalize --blur-probability 0.5 --label-smoothing 0.1 --rotation 0.08 --zoom 0.2 --shift 0.1 --contrast 0.3 --dropout 0.5"
  [big192]="--image-size 192 --blur-probability 0.5 --label-smoothing 0.1"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(base128 blur128 raw128 small96 strong128 slim128 eq128 eqstrong128 big192)
# NAME@earliest validates on the earliest-numbered patients instead of random ones.
for name in "${names[@]}"; do
  base=${name%@*}; flags=${cfg[$base]}
  [ "$name" = "$base" ] || flags="$flags --split-order ${name#*@}"
  echo "== $name: $flags"
  # shellcheck disable=SC2086
  /usr/bin/time -v pneumoscan-train fit "$data" --out "$out/$name" --epochs 30 $flags \
    > "$out/$name.log" 2>&1 || echo "!! $name failed (see $out/$name.log)"
  grep -E "^(auc|accuracy|sensitivity|specificity)|stress validation|parameters," "$out/$name.log" || true
done
