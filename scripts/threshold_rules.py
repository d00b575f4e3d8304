"""Compare threshold rules on a run's shift validation logits (what MODEL_CARD.md's rule table shows).

    python scripts/threshold_rules.py RUN/shift_logits.npz [...]

For each rule: the threshold, sensitivity and specificity on the clean validation, the worst
sensitivity and specificity over the shift perturbations, and the mean specificity over them.
Rules: the clean-validation rule at 0.97 and 0.95 (the shipped model's), the shift-robust rule
(train/metrics.py: the target on clean and on every perturbation), and the pooled variant (the
target on all sets together).
"""

from __future__ import annotations

import sys

import numpy as np

from train.metrics import binary_metrics, choose_threshold, shift_robust_threshold
from train.shift import sigmoid


def main(paths: list[str]) -> None:
    for path in paths:
        data = np.load(path)
        labels = data["labels"]
        sets = {k: sigmoid(data[k]) for k in data.files if k != "labels"}
        shifted = [k for k in sets if k != "clean"]
        pooled_labels = np.tile(labels, len(sets))
        pooled = np.concatenate([sets[k] for k in sets])
        rules = {
            "clean sens>=0.97": choose_threshold(labels, sets["clean"], "sensitivity", 0.97)[0],
            "clean sens>=0.95": choose_threshold(labels, sets["clean"], "sensitivity", 0.95)[0],
            "shift-robust 0.95 (every set)": shift_robust_threshold(labels, sets, 0.95)[0],
            "pooled sens>=0.95": choose_threshold(pooled_labels, pooled, "sensitivity", 0.95)[0],
        }
        print(f"{path}")
        print("| rule | threshold | clean sens | clean spec | worst sens | worst spec | mean spec |")
        print("|---|---|---|---|---|---|---|")
        for name, t in rules.items():
            clean = binary_metrics(labels, sets["clean"], t)
            per = [binary_metrics(labels, sets[k], t) for k in shifted]
            print(
                f"| {name} | {t:.3f} | {clean['sensitivity']:.3f} | {clean['specificity']:.3f} "
                f"| {min(m['sensitivity'] for m in per):.3f} | {min(m['specificity'] for m in per):.3f} "
                f"| {np.mean([m['specificity'] for m in per]):.3f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
