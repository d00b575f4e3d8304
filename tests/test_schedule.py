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


def test_warmup_ramps_each_step_then_hands_back_to_the_schedule():
    import keras
    import numpy as np

    from train.schedule import learning_rate_callbacks, warmup_factor

    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0
    config = TrainConfig(lr_schedule="cosine", epochs=4, learning_rate=0.1, warmup_epochs=2)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.optimizer.learning_rate))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.ones((8, 2), "float32")
    history = model.fit(x, x[:, :1], batch_size=2, epochs=4, verbose=0,
                        callbacks=[*learning_rate_callbacks(config), Record()])
    cosine = [cosine_rate(e, 4, 0.1) for e in range(4)]
    ramp = [cosine[s // 4] * (s + 1) / 8 for s in range(8)]  # 4 steps an epoch, 2 epochs of ramp
    assert np.allclose(seen[:8], ramp) and np.allclose(seen[8:], [cosine[2]] * 4 + [cosine[3]] * 4)
    assert np.allclose(history.history["learning_rate"], cosine)  # the logs see the schedule's rate
