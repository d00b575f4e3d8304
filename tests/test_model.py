"""The network: five chained blocks, small, raw uint8 in, named logit and feature layers."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from train.config import TrainConfig  # noqa: E402
from train.model import FEATURES_LAYER, LOGIT_LAYER, build_model, logit_model  # noqa: E402


def test_default_model_is_small_and_takes_raw_pixels():
    model = build_model(TrainConfig())
    assert model.count_params() < 1_000_000
    assert model.input_shape == (None, 128, 128, 1)
    assert model.layers[1].name == "rescale"
    assert model.output_shape == (None, 1)


def test_the_five_blocks_are_chained_not_wired_to_the_input():
    model = build_model(TrainConfig())
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 5
    # each block's convolution reads the previous block's output (the original wired all to the input)
    for previous, conv in zip(convs, convs[1:]):
        source = conv.input
        assert source is not model.input
        assert conv.input.shape[-1] == previous.filters
    assert convs[0].input.shape[1] == 128 and convs[-1].input.shape[1] == 8


def test_logit_model_matches_probability_through_sigmoid():
    import numpy as np

    config = TrainConfig(image_size=64, filters=(4, 8, 8, 8, 8), dense_units=8)
    model = build_model(config)
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype("float32")
    p = model.predict(x, verbose=0).reshape(-1)
    z = logit_model(model).predict(x, verbose=0).reshape(-1)
    assert np.allclose(p, 1 / (1 + np.exp(-z)), atol=1e-5)
    assert model.get_layer(LOGIT_LAYER) and model.get_layer(FEATURES_LAYER).output.shape[1] == 2


def test_paired_consistency_loss_adds_the_squared_logit_gap_of_each_pair():
    import numpy as np
    import tensorflow as tf

    from train.model import PairedConsistencyLoss

    loss = PairedConsistencyLoss(weight=1.0)
    labels = tf.constant([0.0, 1.0, 0.0, 1.0])  # [view 1 of films a, b; view 2 of films a, b]
    probs = tf.constant([[0.5], [0.5], [0.5], [0.8]])
    per_sample = loss.call(labels, probs).numpy()
    bce = -np.log(0.5)
    gap = np.log(4.0) ** 2  # logit(0.8) - logit(0.5)
    assert per_sample == pytest.approx([bce, bce + gap, bce, -np.log(0.8) + gap], rel=1e-4)
    restored = PairedConsistencyLoss.from_config(PairedConsistencyLoss(0.3, 0.1).get_config())
    assert (restored.weight, restored.label_smoothing) == (0.3, 0.1)
