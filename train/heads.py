"""The pattern head: which kind of finding a positive film looks like, trained on positives only.

The screening head (``logit`` -> ``probability``) is untouched: same layers, same threshold rule.
The pattern head reads the pooled features through its own small dense layer (so it does not
have to share the screening head's 64 units) and ends in ``pattern_logit``: one logit for two
patterns (P(second pattern) = sigmoid), or one per pattern for three or more (softmax).

Keras trains a one-output model here, ``heads`` = [P(screening positive), pattern probabilities],
so the run's callbacks, history and checkpoint selection keep reading ``val_auc`` (the screening
AUC, as for a binary run). The targets carry their own weights, one row per film:
``[screening label, screening weight, pattern label, pattern weight]``. The pattern weight is 0
for a negative film, which is what "masked for NORMAL" means: a healthy child's film never
teaches the pattern head anything, and the pattern classes are balanced among the positives.

With ``--consistency`` the paired-view term (:mod:`train.losses`) applies to the screening output
of every film and, for a two-pattern head, to the pattern output of the films that have one: the
same lungs framed two ways must get the same screening and the same pattern.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops, regularizers

from train.config import TrainConfig
from train.labels import NO_PATTERN, LabelScheme
from train.losses import paired_logit_gap

PATTERN_LOGIT_LAYER = "pattern_logit"
PATTERN_PROBABILITY_LAYER = "pattern_probability"
HEADS_LAYER = "heads"
#: Hidden units of the pattern head's own dense layer.
PATTERN_UNITS = 32
#: Pattern decision threshold on P(second pattern) (two patterns): the head is trained with
#: balanced pattern weights, so 0.5 is its balanced operating point; it is not tuned on validation.
PATTERN_THRESHOLD = 0.5


def add_pattern_head(inputs, pooled, probability, scheme: LabelScheme, config: TrainConfig) -> keras.Model:
    """The training model: screening probability and pattern probabilities, concatenated."""
    reg = regularizers.l2(config.l2) if config.l2 else None
    x = layers.Dropout(config.dropout / 2, name="pattern_dropout1")(pooled)
    x = layers.Dense(PATTERN_UNITS, activation="relu", kernel_regularizer=reg, name="pattern_dense")(x)
    x = layers.Dropout(config.dropout, name="pattern_dropout2")(x)
    logit = layers.Dense(scheme.pattern_units, name=PATTERN_LOGIT_LAYER)(x)
    activation = "sigmoid" if scheme.pattern_units == 1 else "softmax"
    pattern = layers.Activation(activation, name=PATTERN_PROBABILITY_LAYER)(logit)
    heads = layers.Concatenate(name=HEADS_LAYER)([probability, pattern])
    return keras.Model(inputs, heads, name="pneumoscan_cnn_pattern")


@keras.saving.register_keras_serializable("pneumoscan")
class HeadsLoss(keras.losses.Loss):
    """Weighted screening cross-entropy plus masked, weighted pattern cross-entropy, plus
    ``consistency`` x the paired-view logit gaps on training batches (see the module docstring)."""

    def __init__(
        self,
        pattern_units: int = 1,
        label_smoothing: float = 0.0,
        consistency: float = 0.0,
        name: str = "heads_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.pattern_units = int(pattern_units)
        self.label_smoothing = float(label_smoothing)
        self.consistency = float(consistency)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        screening = keras.losses.binary_crossentropy(
            y_true[:, 0:1], y_pred[:, 0:1], label_smoothing=self.label_smoothing
        ) * y_true[:, 1]
        if self.pattern_units == 1:
            pattern = keras.losses.binary_crossentropy(
                y_true[:, 2:3], y_pred[:, 1:2], label_smoothing=self.label_smoothing
            )
        else:
            target = ops.one_hot(ops.cast(y_true[:, 2], "int32"), self.pattern_units)
            pattern = keras.losses.categorical_crossentropy(
                target, y_pred[:, 1:], label_smoothing=self.label_smoothing
            )
        loss = screening + pattern * y_true[:, 3]
        if self.consistency:
            gap = paired_logit_gap(y_pred[:, 0]) * y_true[:, 1]
            if self.pattern_units == 1:
                gap = gap + paired_logit_gap(y_pred[:, 1]) * y_true[:, 3]
            loss = loss + self.consistency * gap
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "pattern_units": self.pattern_units,
            "label_smoothing": self.label_smoothing,
            "consistency": self.consistency,
        }


class _ScreeningColumn:
    """Mixin: a Keras metric that reads column 0 of ``heads`` (the screening head) only."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true[:, 0], y_pred[:, 0])


@keras.saving.register_keras_serializable("pneumoscan")
class ScreeningAUC(_ScreeningColumn, keras.metrics.AUC):
    pass


@keras.saving.register_keras_serializable("pneumoscan")
class ScreeningAccuracy(_ScreeningColumn, keras.metrics.BinaryAccuracy):
    pass


@keras.saving.register_keras_serializable("pneumoscan")
class ScreeningRecall(_ScreeningColumn, keras.metrics.Recall):
    pass


@keras.saving.register_keras_serializable("pneumoscan")
class PatternAUC(keras.metrics.AUC):
    """Pattern AUC (second pattern positive) over the films that have a pattern label."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true[:, 2], y_pred[:, 1], sample_weight=ops.cast(y_true[:, 3] > 0, "float32"))


def compile_heads(
    model: keras.Model, optimizer, config: TrainConfig, scheme: LabelScheme, consistency: float = 0.0
) -> None:
    """Compile the two-head training model with ``optimizer`` (the binary model's, EMA included)."""
    metrics = [ScreeningAccuracy(name="accuracy"), ScreeningAUC(name="auc"), ScreeningRecall(name="sensitivity")]
    if scheme.pattern_units == 1:
        metrics.append(PatternAUC(name="pattern_auc"))
    model.compile(
        optimizer=optimizer,
        loss=HeadsLoss(scheme.pattern_units, config.label_smoothing, consistency),
        metrics=metrics,
    )


def balanced_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Per-film weights that make each class contribute equally (as ``pipeline.class_weights``)."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    per_class = np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1)), 0.0)
    return per_class[labels]


def training_targets(labels: np.ndarray, patterns: np.ndarray, scheme: LabelScheme, weighted: bool = True) -> np.ndarray:
    """``labels`` unchanged for a binary scheme; else ``(n, 4)`` rows of
    [screening label, screening weight, pattern label, pattern weight] (see the module docstring)."""
    if not scheme.has_pattern:
        return labels
    labels = np.asarray(labels, dtype=np.int64)
    patterns = np.asarray(patterns, dtype=np.int64)
    screening_weight = balanced_weights(labels, 2) if weighted else np.ones(len(labels))
    has = patterns != NO_PATTERN
    pattern_weight = np.zeros(len(labels))
    if has.any():
        classes = len(scheme.patterns)
        pattern_weight[has] = balanced_weights(patterns[has], classes) if weighted else 1.0
    return np.stack([labels, screening_weight, np.where(has, patterns, 0), pattern_weight], axis=1).astype(np.float32)


def patterns_of(loaded) -> np.ndarray:
    """The pattern labels of a :class:`train.loading.LoadedSet`, aligned with its images."""
    return np.array([s.pattern for s in loaded.samples], dtype=np.int64)


def keras_pattern_predictor(model, batch_size: int = 64):
    """Pattern probabilities ``(n, P)`` (P(each pattern); two patterns give two columns) from a
    training-model checkpoint, for uint8 images ``(n, s, s)``."""

    def predict(images: np.ndarray) -> np.ndarray:
        out = np.asarray(model.predict(images[..., None].astype(np.float32), batch_size=batch_size, verbose=0))
        return pattern_probabilities(out[:, 1:])

    return predict


def pattern_probabilities(head: np.ndarray) -> np.ndarray:
    """``(n, P)`` probabilities from the pattern head's activations: one sigmoid column becomes
    [1 - p, p]; a softmax is already one column per pattern."""
    head = np.asarray(head, dtype=np.float64)
    if head.ndim == 1:
        head = head[:, None]
    return np.concatenate([1.0 - head, head], axis=1) if head.shape[1] == 1 else head
