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
  # Issue 11: make framing and markers useless as cues (train/pipeline.py), judged on the shift
  # validation (train/shift.py). frame = blur + random-resized crops 30%..225% of the area with
  # edge/reflect/black fill, aspect 0.8-1.25, shift 10%, synthetic R/L markers and text on both
  # classes, black collimation bands.
  [frame128]="--image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3"
  # robust = frame + weight EMA, the epoch chosen on clean + shifted validation, shift-robust threshold.
  [robust128]="--epochs 25 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  [robust160]="--epochs 25 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # pair = robust + two augmented views of each film per step (batch 64 = 32 films x 2) with a
  # logit-consistency loss of weight 0.3; 16 epochs see as many views as 32 unpaired ones.
  [pair128]="--epochs 16 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # long = pair with twice the schedule (the 16-epoch run's best epoch was its last): 32 epochs,
  # early-stopping patience 8, so the plateau schedule gets to lower the learning rate.
  [long128]="--epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # longpattern = long + the bacterial/viral pattern head (issue 17): same films, same screening recipe.
  [longpattern128]="--pattern --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # longpattern160 = longpattern at 160 px (the second model, models/pattern/).
  [longpattern160]="--pattern --epochs 32 --patience 8 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # xlpattern160 = longpattern160 trained 56 epochs with patience 12: its pattern AUC was still
  # rising at epoch 32 (val_pattern_auc 0.83, one plateau cut so far).
  [xlpattern160]="--pattern --epochs 56 --patience 12 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # cos = long with a cosine learning-rate decay over the 32 epochs instead of plateau cuts
  # (train/schedule.py: the plateau rule held the starting rate for 26 of long128's 32 epochs),
  # and no early stop (patience 32) since the low-rate epochs at the end are the point.
  [cos128]="--lr-schedule cosine --epochs 32 --patience 32 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  [cospattern160]="--pattern --lr-schedule cosine --epochs 32 --patience 32 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # wide = robust with crops down to 15% of the area (the published analysis went to 8%).
  # widelong = long with crops down to 15% (what wide128 asked, on the shipped schedule);
  # marker = long with synthetic markers on 80% of films (letters; text on 40%), because the
  # large "R" is the worst shift perturbation of nearly every run.
  [widelong128]="--epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.15 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  [marker128]="--epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.8 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # cons = long with twice the consistency weight.
  [cons128]="--epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.6 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # seed = long exactly, another seed (how far two runs of one recipe differ);
  # noise = long with Gaussian sensor noise on half the films (stress noise_8 is the weakest figure).
  [seed128]="--seed 43 --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  [noise128]="--noise-probability 0.5 --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # fast160 = noise at 160 px in the 45-minute budget: 24 epochs (the 160 px gain came from
  # 32-56 epoch runs that took 56-104 minutes).
  [fast160]="--noise-probability 0.5 --epochs 24 --patience 8 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # central = long with the percentile stretch read from the film's central half
  # (edge_app/preprocessing.py: a large white letter no longer restretches the film).
  [central128]="--normalization central-percentile --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # centralpattern160 = the shipped recipe (central128, seed 43) with the pattern head at 160 px:
  # the pattern model's own recipe brought up to the shipped model's stretch (issue 17).
  [centralpattern160]="--pattern --seed 43 --normalization central-percentile --epochs 32 --patience 8 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # fastcos160 = the shipped recipe at 160 px in the 45-minute budget with a cosine decay over its
  # 24 epochs: fast160 lost because the plateau rule never lowered the learning rate.
  [fastcos160]="--seed 43 --normalization central-percentile --lr-schedule cosine --epochs 24 --patience 24 --image-size 160 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # mix128 = the shipped recipe (central128, seed 43) with mixup (Beta(0.2, 0.2) blends of two
  # films and their labels, before the framing augmentation; train/pipeline.py: mix_films).
  [mix128]="--mixup 0.2 --seed 43 --normalization central-percentile --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # crop08 = the shipped recipe (central128, seed 43) with random-resized crops down to 8% of the
  # area, as in the published analysis that closed most of the test split's framing gap (a
  # ResNet-50; issue 11); widelong128 went down to 15% with the older whole-film stretch.
  [crop08]="--crop-area-min 0.08 --seed 43 --normalization central-percentile --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # ema999 = the shipped recipe (central128, seed 43) with a long weight average: EMA momentum
  # 0.999 (a window of about 7 epochs at 138 steps each, SWA-like) instead of 0.99 (under one).
  [ema999]="--ema 0.999 --seed 43 --normalization central-percentile --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # swa128 = the shipped recipe (central128, seed 43) run all 32 epochs (no early stop) keeping
  # every epoch's weights, for weight averages over a window of epochs with the batch-norm
  # statistics re-estimated (SWA proper; `pneumoscan-train average`, train/weight_average.py).
  [swa128]="--keep-epochs --seed 43 --normalization central-percentile --epochs 32 --patience 32 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # swa128s42 = swa128 with seed 42: a second draw of best epoch vs last epoch vs their average.
  [swa128s42]="--keep-epochs --seed 42 --normalization central-percentile --epochs 32 --patience 32 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # rules44 = a third draw (seed 44) for the epoch rules: the shipped recipe keeping its epoch by
  # --select-by shift-specificity, all 32 epochs kept (no early stop), so scripts/epoch_criteria.py
  # can say which epoch the pooled AUC would have kept on the same draw.
  [rules44]="--keep-epochs --seed 44 --select-by shift-specificity --normalization central-percentile --epochs 32 --patience 32 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  # sharp128 = the shipped recipe (scripts/shipped-recipe.sh: central128, seed 42, epoch by
  # --select-by shift-specificity) with half the training films edge-enhanced by an unsharp mask
  # (--sharpen-probability, train/pipeline.py: random_sharpen): the default lost sensitivity on the
  # stress validation's sharpened films (0.942) more than under any framing change.
  [sharp128]="--sharpen-probability 0.5 --seed 42 --select-by shift-specificity --normalization central-percentile --epochs 32 --patience 8 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
  [wide128]="--epochs 25 --image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.15 --crop-area-max 2.25 --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15 --threshold-rule shift-robust --sensitivity-target 0.95"
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
  grep -E "^(auc|accuracy|sensitivity|specificity)|stress validation|worst specificity|parameters," "$out/$name.log" || true
done
