"""Starting a backbone from another run's weights (train/warm_start.py): the backbone is copied
layer for layer, the head starts fresh, and a backbone of another shape is refused."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from train.config import TrainConfig  # noqa: E402
from train.data import DataError  # noqa: E402
from train.warm_start import backbone_layers, warm_start  # noqa: E402

SMALL = dict(image_size=32, filters=(4, 4, 8, 8, 8), dense_units=8)


def _model(seed: int, **overrides):
    import keras

    from train.model import build_model

    keras.utils.set_random_seed(seed)
    return build_model(TrainConfig(**{**SMALL, **overrides}))


def test_the_backbone_is_copied_and_the_head_is_not(tmp_path):
    donor, model = _model(1), _model(2)
    donor.save(tmp_path / "model.keras")
    copied = warm_start(model, tmp_path / "model.keras")
    assert copied == [layer.name for layer in backbone_layers(model)]
    assert copied[0] == "conv1" and copied[-1] == "features" and "dense" not in copied
    for name in copied:
        for a, b in zip(model.get_layer(name).get_weights(), donor.get_layer(name).get_weights()):
            assert np.array_equal(a, b)
    assert not np.array_equal(model.get_layer("dense").get_weights()[0], donor.get_layer("dense").get_weights()[0])


def test_a_backbone_of_another_shape_or_no_checkpoint_is_refused(tmp_path):
    _model(1, filters=(4, 4, 8, 8, 16)).save(tmp_path / "model.keras")
    with pytest.raises(DataError, match="same --filters"):
        warm_start(_model(2), tmp_path / "model.keras")
    with pytest.raises(DataError, match="no checkpoint"):
        warm_start(_model(2), tmp_path / "empty" / "model.keras")

