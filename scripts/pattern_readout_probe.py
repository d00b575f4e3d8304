"""Would another decision point or more layers lift the re-fitted pattern read-out?

    python scripts/pattern_readout_probe.py RUN_DIR [REFIT_RUN_DIR]

``RUN_DIR`` is a run trained with ``--pattern`` (the source of ``refit-pattern``);
``REFIT_RUN_DIR`` (default ``RUN_DIR-refit``) gives the screening scores and threshold that
decide which validation films are "called pneumonia". Keras, no file is written.

It rebuilds the re-fit's training views (``train.pattern_refit.training_views``: as is, two of the
run's augmentation, one noisy) and pools the last three blocks' features. Then:

1. **Decision points.** The gap read-out at the re-fit's strength, fitted on the training views,
   read at P(viral) = 0.5 (as shipped); after a Platt rescale fitted on its out-of-fold logits of
   the clean training films (5 patient-wise folds); and moved to the equal-sensitivity point of
   those out-of-fold logits (clean view, then all views). Validation films are only scored.
2. **More layers.** The same read-out on the pooled features of the last two and three blocks,
   each strength chosen by the same patient-wise CV (``choose_strength``).

For each it prints, on the validation films called pneumonia: AUC, accuracy, viral and bacterial
found, the accuracy predicted at the test split's mix (issue 17: 242 bacterial, 148 viral),
and for the decision points the Brier score and expected calibration error (10 bins).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import samples_from_split
from train.labels import NO_PATTERN
from train.loading import load_samples
from train.metrics import roc_auc
from train.pattern_refit import FOLDS, choose_strength, fit_readout, training_views

BLOCKS = ("bn3", "bn4", "features")
TEST_MIX_BACTERIAL = 242 / 390


def pooled_blocks(model, images: np.ndarray) -> list[np.ndarray]:
    import keras

    probe = keras.Model(model.input, [keras.layers.GlobalAveragePooling2D()(model.get_layer(n).output) for n in BLOCKS])
    return [np.asarray(o, np.float64) for o in probe.predict(images[..., None].astype(np.float32), batch_size=64, verbose=0)]


def report(name: str, logit: np.ndarray, viral: np.ndarray, calibration: bool = True) -> None:
    p = 1 / (1 + np.exp(-logit))
    called_viral = p >= 0.5
    sens, spec = called_viral[viral].mean(), (~called_viral[~viral]).mean()
    line = (f"{name}: AUC {roc_auc(viral, p):.4f} accuracy {np.mean(called_viral == viral):.3f} viral found {sens:.3f} "
            f"bacterial found {spec:.3f} at the test mix {TEST_MIX_BACTERIAL * spec + (1 - TEST_MIX_BACTERIAL) * sens:.3f}")
    if calibration:
        bins = np.clip((p * 10).astype(int), 0, 9)
        ece = sum(abs(viral[bins == k].mean() - p[bins == k].mean()) * (bins == k).sum() for k in range(10) if (bins == k).any())
        line += f" Brier {np.mean((p - viral) ** 2):.4f} ECE {ece / len(p):.4f}"
    print(line, flush=True)


def main(run: Path, refit: Path) -> None:
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_curve
    from sklearn.model_selection import GroupKFold

    config = TrainConfig.load(run / "config.json")
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    model = keras.models.load_model(run / "model.keras", compile=False)
    train = load_samples([s for s in samples_from_split(split, "train") if s.pattern != NO_PATTERN], config.preprocess)
    views = [pooled_blocks(model, v) for v in training_views(train.images, config)]
    patterns = np.array([s.pattern for s in train.samples])
    y, groups = np.tile(patterns, len(views)), [s.patient for s in train.samples] * len(views)
    val = load_samples(samples_from_split(split, "validation"), config.preprocess)
    val_blocks = pooled_blocks(model, val.images)
    val_patterns = np.array([s.pattern for s in val.samples])
    screening = np.load(refit / "validation_scores.npy")[1]
    threshold = json.loads((refit / "metrics.json").read_text(encoding="utf-8"))["threshold"]
    called = (screening >= threshold) & (val_patterns != NO_PATTERN)
    viral = val_patterns[called] == 1
    strength = json.loads((refit / "config.json").read_text(encoding="utf-8"))["extra"]["pattern_refit"]["C"]
    print(f"{called.sum()} validation films called pneumonia ({viral.sum()} viral); read-out C = {strength:g}")

    x = np.concatenate([v[-1] for v in views])
    weights, bias = fit_readout(x, y, strength)
    logit = val_blocks[-1][called] @ weights + bias
    out_of_fold = np.zeros(len(x))
    for fit_idx, held_idx in GroupKFold(FOLDS).split(x, y, groups=groups):
        w, b = fit_readout(x[fit_idx], y[fit_idx], strength)
        out_of_fold[held_idx] = x[held_idx] @ w + b
    clean = out_of_fold[: len(patterns)]
    report("P(viral) = 0.5 (as shipped)", logit, viral)
    platt = LogisticRegression(C=1e6).fit(clean[:, None], patterns)
    report("Platt rescale on the out-of-fold logits", platt.coef_[0, 0] * logit + platt.intercept_[0], viral)
    for name, scores, labels in (("clean view", clean, patterns), ("all views", out_of_fold, y)):
        fpr, tpr, cut = roc_curve(labels == 1, scores)
        point = cut[np.argmin(np.abs(tpr - (1 - fpr)))]
        report(f"equal sensitivities on the out-of-fold logits, {name} (logit {point:+.3f})", logit - point, viral)

    for depth in (2, 3):
        x = np.concatenate([np.concatenate(v[-depth:], axis=1) for v in views])
        c, table = choose_strength(x, y, groups)
        w, b = fit_readout(x, y, c)
        scores = np.concatenate(val_blocks[-depth:], axis=1)[called] @ w + b
        report(f"last {depth} blocks ({x.shape[1]} features, C {c:g}, CV AUC {max(r['cv_auc'] for r in table):.4f})",
               scores, viral, calibration=False)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    main(run, Path(sys.argv[2]) if len(sys.argv) == 3 else Path(f"{run}-refit"))
