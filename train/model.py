"""The CNN: the original notebook's design, with its five blocks chained as intended.

Five blocks of (3x3 convolution + ReLU, 2x2 max-pooling, batch normalisation), global average
pooling, a ReLU dense layer with dropout and a one-unit sigmoid output. Rescaling to [0, 1] is
the first layer, so the exported model takes the raw uint8 pixels the device produces.

The pre-sigmoid layer is named ``logit`` so export can emit it: an int8 sigmoid has only 256
levels and a confident model would push most images into the top one, destroying the ranking.
The last block's output is named ``features`` so export can also emit the class activation map.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from train.config import TrainConfig

LOGIT_LAYER = "logit"
FEATURES_LAYER = "features"
PROBABILITY_LAYER = "probability"


def build_model(config: TrainConfig) -> keras.Model:
    size = config.image_size
    reg = regularizers.l2(config.l2) if config.l2 else None
    inputs = keras.Input(shape=(size, size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate(config.filters, start=1):
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_regularizer=reg, name=f"conv{i}"
        )(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        name = FEATURES_LAYER if i == len(config.filters) else f"bn{i}"
        x = layers.BatchNormalization(name=name)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(config.dropout / 2, name="dropout1")(x)
    x = layers.Dense(config.dense_units, activation="relu", kernel_regularizer=reg, name="dense")(x)
    x = layers.Dropout(config.dropout, name="dropout2")(x)
    logit = layers.Dense(1, name=LOGIT_LAYER)(x)
    probability = layers.Activation("sigmoid", name=PROBABILITY_LAYER)(logit)
    return keras.Model(inputs, probability, name="pneumoscan_cnn")


@keras.saving.register_keras_serializable(package="pneumoscan")
class PairedConsistencyLoss(keras.losses.Loss):
    """Binary cross-entropy plus ``weight`` x the squared logit difference between the two views
    of each film (a batch is ``[view 1; view 2]``, see :func:`train.pipeline.paired_views`).

    Augmentation alone lets a model stay sensitive to framing as long as it is right on average;
    this term asks for the same logit however the film is framed, marked or banded, which is
    what the shift validation's flip rate measures. Per-sample values, so class weights apply.
    On unpaired batches (validation) the second term compares unrelated films: read val_auc,
    not val_loss, for such runs.
    """

    def __init__(self, weight: float = 0.5, label_smoothing: float = 0.0, name: str = "paired_consistency", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.label_smoothing = weight, label_smoothing

    def call(self, y_true, y_pred):
        from keras import ops

        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1, 1))
        y_pred = ops.reshape(y_pred, (-1, 1))
        bce = keras.losses.binary_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)
        p = ops.clip(y_pred[:, 0], 1e-6, 1 - 1e-6)
        logit = ops.log(p) - ops.log(1 - p)
        half = ops.shape(logit)[0] // 2
        gap = ops.square(logit[:half] - logit[half : 2 * half])
        return bce + self.weight * ops.concatenate([gap, gap])

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "label_smoothing": self.label_smoothing}


def compile_model(model: keras.Model, config: TrainConfig) -> None:
    loss = (
        PairedConsistencyLoss(config.consistency, config.label_smoothing)
        if config.consistency > 0 and config.augment
        else keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            config.learning_rate, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99
        ),
        loss=loss,
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Recall(name="sensitivity"),
        ],
    )


def logit_model(model: keras.Model) -> keras.Model:
    """The same network ending at the pre-sigmoid logit (what the device runs)."""
    return keras.Model(model.inputs, model.get_layer(LOGIT_LAYER).output, name="pneumoscan_logit")
