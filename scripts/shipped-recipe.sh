# The shipped model's training flags, sourced by scripts/make-model.sh and
# scripts/make-pattern-model.sh so both models are trained alike (MODEL_CARD.md compares this
# configuration with every other one tried). It is "central128@earliest" with seed 43 in
# scripts/experiments.sh: framing/marker/band augmentation, two views of each film with a
# logit-consistency loss, weight EMA, the epoch chosen on clean + shifted validation, the
# shift-robust threshold, 32 epochs with patience 8, and the percentile stretch read from the
# film's central half (--normalization central-percentile: a large white corner letter no longer
# restretches the film). Of its two seeds (42, 43), 43 has the higher worst-case specificity over
# the shift validation and the combined perturbations (scripts/combined_shift.py).
# shellcheck disable=SC2034  # used by the scripts that source this file
recipe=(--image-size 128 --blur-probability 0.5 --label-smoothing 0.1 --crop-area-min 0.3 --crop-area-max 2.25
        --aspect-jitter 1.25 --shift 0.1 --marker-probability 0.5 --band-probability 0.3 --ema 0.99 --consistency 0.3 --batch-size 64
        --select-on crop_10,pad_edge_25,pad_black_25,aspect_1.25,bands_tb_10,letter_R_tl_15
        --threshold-rule shift-robust --sensitivity-target 0.95 --split-order earliest
        --epochs 32 --patience 8 --normalization central-percentile --seed 43)
