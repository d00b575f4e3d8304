"""How the learning rate moves over a run: cut on a plateau, or a cosine decay over the epochs.

The plateau rule (the original one) only lowers the rate after ``reduce_lr_patience`` epochs
without a better validation AUC. With strong augmentation the validation AUC creeps up slowly for
the whole run, so the rate stayed at its start value for most of it and the best epoch was the
last: the run stopped before it had settled. A cosine decay spends the same number of epochs
exploring at a high rate early and settling at a low one late, without needing the validation set
to stall first. It is computed per epoch (not per step) so it means the same thing with paired
views, distributed training or any batch size.

A warm-up (``--warmup-epochs N``) scales either schedule's rate by a ramp that rises each step
from 1/(N x steps per epoch) to 1 over the first N epochs. Why: a pretrained backbone under a
freshly initialised head (``--architecture efficientnet-lite0``) gets its largest, least
informed gradients in the first steps, and at the full rate those steps overwrite what ImageNet
taught it before the head has learnt anything. Measured once, at 128 px on the pattern labels,
it moved the validation AUC only from 0.865 to 0.873 (docs/pattern.md): a safeguard, not a gain.
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


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The ramp of 0-based training ``step``: (step + 1) / warmup_steps, 1 from then on."""
    return 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)


def learning_rate_callbacks(config) -> list:
    """The Keras callbacks that apply ``config.lr_schedule`` and its warm-up."""
    schedule = [learning_rate_callback(config)]
    # The warm-up goes first, so that at an epoch's end it restores the schedule's rate before the
    # plateau rule reads it. It reads that rate at the epoch's first step, once every callback's
    # on_epoch_begin has run.
    return ([_linear_warmup(config.warmup_epochs)] if config.warmup_epochs > 0 else []) + schedule


def _linear_warmup(epochs: int):
    import keras

    class LinearWarmup(keras.callbacks.Callback):
        """Scales the rate the schedule set for this epoch by :func:`warmup_factor` at each step of
        the first ``epochs`` epochs, and puts the schedule's rate back at each of those epochs'
        end, so the plateau rule and the logs see the schedule's own."""

        def on_train_begin(self, logs=None):
            if not self.params.get("steps"):
                # An unknown epoch length (a dataset of unknown cardinality) has no step ramp.
                raise ValueError("--warmup-epochs needs training data of known length (steps per epoch)")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch >= epochs:
                return
            if batch == 0:
                self.rate = float(self.model.optimizer.learning_rate)
            steps = int(self.params["steps"])
            self.model.optimizer.learning_rate = self.rate * warmup_factor(self.epoch * steps + batch, epochs * steps)

        def on_epoch_end(self, epoch, logs=None):
            if epoch < epochs:
                self.model.optimizer.learning_rate = self.rate

    return LinearWarmup()


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
