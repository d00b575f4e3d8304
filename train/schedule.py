"""How the learning rate moves over a run: cut on a plateau, or a cosine decay over the epochs.

The plateau rule (the original one) only lowers the rate after ``reduce_lr_patience`` epochs
without a better validation AUC. With strong augmentation the validation AUC creeps up slowly for
the whole run, so the rate stayed at its start value for most of it and the best epoch was the
last: the run stopped before it had settled. A cosine decay spends the same number of epochs
exploring at a high rate early and settling at a low one late, without needing the validation set
to stall first. It is computed per epoch (not per step) so it means the same thing with paired
views, distributed training or any batch size.
"""

from __future__ import annotations

import math

LR_SCHEDULES = ("plateau", "cosine")
COSINE_FLOOR = 0.01  # the last epoch trains at 1% of the starting rate


def cosine_rate(epoch: int, epochs: int, base: float, floor: float = COSINE_FLOOR) -> float:
    """The rate of 0-based ``epoch`` of ``epochs``: ``base`` at the first, ``base * floor`` at the last."""
    if epochs <= 1:
        return base
    progress = min(max(epoch, 0), epochs - 1) / (epochs - 1)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def learning_rate_callback(config):
    """The Keras callback that applies ``config.lr_schedule``."""
    import keras

    if config.lr_schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            lambda epoch, _rate: cosine_rate(epoch, config.epochs, config.learning_rate)
        )
    if config.lr_schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=0.3, patience=config.reduce_lr_patience, min_lr=1e-5
        )
    raise ValueError(f"unknown learning-rate schedule {config.lr_schedule!r}; known: {', '.join(LR_SCHEDULES)}")
