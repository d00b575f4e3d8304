"""The CNN: the original notebook's design, with its five blocks chained as intended.

(Or, with ``--architecture efficientnet-lite0``, a pretrained backbone in place of the five
blocks, under the same head and layer names: train/efficientnet_lite.py.)

Five blocks of (3x3 convolution + ReLU, 2x2 max-pooling, batch normalisation), global average
pooling, a ReLU dense layer with dropout and a one-unit sigmoid output. Rescaling to [0, 1] is
the first layer, so the exported model takes the raw uint8 pixels the device produces.

The pre-sigmoid layer is named ``logit`` so export can emit it: an int8 sigmoid has only 256
levels and a confident model would push most images into the top one, destroying the ranking.
The last block's output is named ``features`` so export can also emit the class activation map.

A run whose label scheme has patterns (:mod:`train.labels`) gets the pattern head beside the
screening head (:func:`train.heads.add_pattern_head`); the screening head is the same layers
with the same names either way, so export, the heatmap and the threshold rule treat it alike.
"""

from __future__ import annotations

import keras
from keras import layers, regularizers

from train import efficientnet_lite
from train.config import ARCHITECTURES, TrainConfig
from train.labels import LabelScheme
from train.losses import PairedConsistencyLoss

LOGIT_LAYER = "logit"
FEATURES_LAYER = "features"
#: The pooled features both heads read (train/pattern_refit.py re-fits the pattern head on them).
POOLED_LAYER = "gap"
PROBABILITY_LAYER = "probability"


def build_model(config: TrainConfig) -> keras.Model:
    size = config.image_size
    reg = regularizers.l2(config.l2) if config.l2 else None
    inputs = keras.Input(shape=(size, size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if config.architecture == "cnn":
        for i, filters in enumerate(config.filters, start=1):
            x = layers.Conv2D(
                filters, 3, padding="same", activation="relu", kernel_regularizer=reg, name=f"conv{i}"
            )(x)
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
            name = FEATURES_LAYER if i == len(config.filters) else f"bn{i}"
            x = layers.BatchNormalization(name=name)(x)
    elif config.architecture == efficientnet_lite.NAME:
        x = efficientnet_lite.backbone(x, FEATURES_LAYER)  # no L2: its prior is ImageNet, not zero
    else:
        raise ValueError(f"unknown architecture {config.architecture!r}; one of {ARCHITECTURES}")
    pooled = layers.GlobalAveragePooling2D(name=POOLED_LAYER)(x)
    x = layers.Dropout(config.dropout / 2, name="dropout1")(pooled)
    x = layers.Dense(config.dense_units, activation="relu", kernel_regularizer=reg, name="dense")(x)
    x = layers.Dropout(config.dropout, name="dropout2")(x)
    logit = layers.Dense(1, name=LOGIT_LAYER)(x)
    probability = layers.Activation("sigmoid", name=PROBABILITY_LAYER)(logit)
    scheme = LabelScheme.from_dict(config.extra.get("labels"))
    if scheme.has_pattern:
        from train.heads import add_pattern_head

        return add_pattern_head(inputs, pooled, probability, scheme, config)
    return keras.Model(inputs, probability, name="pneumoscan_cnn")


def compile_model(model: keras.Model, config: TrainConfig) -> None:
    optimizer = keras.optimizers.Adam(
        config.learning_rate, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum or 0.99
    )
    consistency = config.consistency if config.consistency > 0 and config.augment else 0.0
    scheme = LabelScheme.from_dict(config.extra.get("labels"))
    if scheme.has_pattern:
        from train.heads import compile_heads

        return compile_heads(model, optimizer, config, scheme, consistency)
    loss = (
        PairedConsistencyLoss(consistency, config.label_smoothing)
        if consistency
        else keras.losses.BinaryCrossentropy(label_smoothing=config.label_smoothing)
    )
    model.compile(
        optimizer=optimizer,
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
