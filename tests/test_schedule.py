"""The learning-rate schedules: the cosine curve's ends and shape, and that Keras applies it."""

import itertools

import numpy as np
import pytest

from train.config import TrainConfig
from train.schedule import COSINE_FLOOR, cosine_rate, learning_rate_callback


def test_cosine_starts_at_the_rate_and_ends_at_the_floor():
    rates = [cosine_rate(e, 32, 1e-3) for e in range(32)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-3 * COSINE_FLOOR)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[15] == pytest.approx(1e-3 * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + np.cos(np.pi * 15 / 31))))


def test_cosine_of_a_one_epoch_run_is_the_rate():
    assert cosine_rate(0, 1, 3e-4) == 3e-4


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate_callback(TrainConfig(lr_schedule="linear"))


def test_keras_trains_each_epoch_at_the_cosine_rate():
    keras = pytest.importorskip("keras")
    config = TrainConfig(epochs=4, learning_rate=0.01, lr_schedule="cosine")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    history = model.fit(x, x[:, :1], epochs=config.epochs, verbose=0, callbacks=[learning_rate_callback(config)])
    expected = [cosine_rate(e, config.epochs, config.learning_rate) for e in range(config.epochs)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-5)
