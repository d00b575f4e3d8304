"""Training losses shared by the binary model (:mod:`train.model`) and the pattern head
(:mod:`train.heads`): the paired-view logit consistency term.

Augmentation alone lets a model stay sensitive to framing as long as it is right on average; the
consistency term asks for the same logit however the film is framed, marked or banded, which is
what the shift validation's flip rate measures. A training batch is ``[view 1; view 2]`` of the
same films (:func:`train.pipeline.paired_views`); validation batches are unpaired, so there the
term compares unrelated films: read ``val_auc``, not ``val_loss``, for such runs.
"""

from __future__ import annotations

import keras
from keras import ops


def paired_logit_gap(probability):
    """Per-sample squared logit difference between the two views of each film, for a batch of
    probabilities ``(n,)`` stacked ``[view 1; view 2]``; each film's gap is given to both views."""
    p = ops.clip(probability, 1e-6, 1 - 1e-6)
    logit = ops.log(p) - ops.log(1 - p)
    half = ops.shape(logit)[0] // 2
    gap = ops.square(logit[:half] - logit[half : 2 * half])
    return ops.concatenate([gap, gap])


@keras.saving.register_keras_serializable(package="pneumoscan")
class PairedConsistencyLoss(keras.losses.Loss):
    """Binary cross-entropy plus ``weight`` x :func:`paired_logit_gap`. Per-sample values, so
    class weights apply."""

    def __init__(self, weight: float = 0.5, label_smoothing: float = 0.0, name: str = "paired_consistency", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.label_smoothing = weight, label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1, 1))
        y_pred = ops.reshape(y_pred, (-1, 1))
        bce = keras.losses.binary_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)
        return bce + self.weight * paired_logit_gap(y_pred[:, 0])

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "label_smoothing": self.label_smoothing}
