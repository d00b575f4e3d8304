"""Which epoch a run keeps: the pooled AUC, or the specificity at the shift-robust threshold.

The checkpoint and early stopping follow one figure of the selection set (the clean validation
films and their copies under ``--select-on`` perturbations, :func:`train.fit.selection_copies`).

- ``auc`` (the default): the AUC of all copies pooled, Keras' ``val_auc``. It is smooth, and it
  is low for a model whose scores move with framing even when each copy alone ranks well.
- ``shift-specificity``: the threshold the run's shift-robust rule would pick on the selection set
  (sensitivity >= the target on the clean films and on every copy), and the worst specificity over
  the copies at it. That is the figure the issue's bar is on: healthy children called healthy
  under a shift, with the sick ones still found. Why: on two draws of the shipped recipe the pooled
  AUC went flat while this figure kept rising (MODEL_CARD.md, ``swa128``; from the kept epochs by
  ``scripts/epoch_criteria.py``). It is coarse (one healthy film of 202 is 0.005), so the learning
  rate schedule keeps following the smooth AUC.
"""

from __future__ import annotations

import numpy as np

from train.metrics import binary_metrics, shift_robust_threshold

SELECTION_RULES = ("auc", "shift-specificity")
#: The history column each rule's checkpoint and early stopping follow.
MONITORS = {"auc": "val_auc", "shift-specificity": "val_shift_specificity"}


def operating_point(labels: np.ndarray, probabilities: dict[str, np.ndarray], target: float) -> dict:
    """At the shift-robust threshold of ``probabilities`` (per set: ``"clean"`` and each copy),
    the threshold, the clean films' specificity and the worst specificity over the copies."""
    threshold, _ = shift_robust_threshold(labels, probabilities, target)
    specificity = {name: binary_metrics(labels, p, threshold)["specificity"] for name, p in probabilities.items()}
    copies = [v for name, v in specificity.items() if name != "clean"]
    return {"threshold": threshold, "clean_specificity": specificity["clean"],
            "worst_specificity": min(copies) if copies else specificity["clean"]}


def shift_specificity_callback(copies: dict[str, np.ndarray], labels: np.ndarray, target: float):
    """A Keras callback writing ``val_shift_specificity`` (:func:`operating_point`'s worst
    specificity on ``copies``, uint8 images per set) into each epoch's logs. Place it after the
    EMA swap (the epoch is judged with the weights it would be saved with) and before the
    checkpoint, early stopping and CSV logger that read it."""
    import keras

    from train.evaluate import keras_predictor

    class ShiftSpecificity(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            predict = keras_predictor(self.model)
            figures = operating_point(labels, {name: predict(images) for name, images in copies.items()}, target)
            if logs is not None:
                logs[MONITORS["shift-specificity"]] = figures["worst_specificity"]

    return ShiftSpecificity()
