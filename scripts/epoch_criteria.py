"""Which epoch each selection criterion would keep, from a run's kept epochs.

    python scripts/epoch_criteria.py RUN_DIR        (a run trained with --keep-epochs)

The checkpoint and early stopping pick the epoch with the highest AUC on the selection set (the
clean validation films pooled with their copies under the run's ``--select-on`` perturbations).
The model is then used at one threshold, the shift-robust one, and what the issue asks of it is
specificity at that threshold. A pooled AUC can rise while the healthy films' scores creep up
under a shift, so the two need not pick the same epoch. For every kept epoch the script scores
the same selection set and prints its pooled AUC (exact, where Keras' ``val_auc`` bins the
scores) and, at the threshold the run's rule would pick on that set (sensitivity >= the run's
target on clean and on every copy), the specificity on the clean films and the worst one over
the copies. It ends with the epoch each column would keep. Read the kept epoch on the whole
harder validation with ``pneumoscan-train average RUN --out OUT --epochs N-N --average-batch-norm``
(the epoch's own weights and statistics): it has 14 shift perturbations and the stress test
beyond the six the epoch was chosen on.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import split_samples
from train.evaluate import keras_logits
from train.fit import EPOCH_WEIGHTS, EPOCHS_DIR, selection_copies
from train.loading import load_samples
from train.metrics import roc_auc
from train.model import build_model
from train.selection import operating_point
from train.shift import decode_originals, sigmoid


def main(run_dir: str) -> None:
    run = Path(run_dir)
    config = TrainConfig.load(run / "config.json")
    samples = split_samples(json.loads((run / "split.json").read_text()), "validation")
    val_set = load_samples(samples, config.preprocess)
    sets = selection_copies(val_set, decode_originals([s.path for s in val_set.samples]), config)
    labels = val_set.labels
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    model = build_model(config)
    logits = keras_logits(model)  # shares the model's layers: each epoch's weights load into both
    rows = []
    print(f"{len(labels)} validation films x {len(sets)} sets ({', '.join(sets)}); target sensitivity {config.sensitivity_target}")
    print("| epoch | learning rate | Keras val_auc | pooled AUC | threshold | clean spec | worst copy spec |")
    print("|---|---|---|---|---|---|---|")
    for epoch in range(1, len(history) + 1):
        weights = run / EPOCHS_DIR / EPOCH_WEIGHTS.format(epoch=epoch)
        if not weights.is_file():
            continue
        model.load_weights(weights)
        probabilities = {name: sigmoid(logits(images)) for name, images in sets.items()}
        pooled = roc_auc(np.tile(labels, len(sets)), np.concatenate(list(probabilities.values())))
        point = operating_point(labels, probabilities, config.sensitivity_target)
        row = history[epoch - 1]
        rows.append((epoch, pooled, point["clean_specificity"], point["worst_specificity"]))
        print(f"| {epoch} | {float(row['learning_rate']):.1e} | {float(row['val_auc']):.4f} | {pooled:.4f} | "
              f"{point['threshold']:.3f} | {point['clean_specificity']:.3f} | {point['worst_specificity']:.3f} |")
    # The first of equal epochs, as the checkpoint keeps it (--select-by: train/selection.py).
    for name, column in (("pooled AUC (--select-by auc)", 1), ("clean specificity at the threshold", 2),
                         ("worst copy specificity (--select-by shift-specificity)", 3)):
        best = max(rows, key=lambda r: r[column])
        print(f"highest {name}: epoch {best[0]} ({best[column]:.4f})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
