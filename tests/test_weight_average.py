"""Weight averages over a run's kept epochs (train/weight_average.py): the mean of the epoch
weights, batch-norm statistics re-estimated on the training batches, a run folder that exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")

from conftest import run_fingerprint, write_dataset  # noqa: E402
from train.cli import app  # noqa: E402

runner = CliRunner()


def _bn_model():
    import keras

    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(3, 1, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_batch_norm_statistics_become_the_mean_of_the_batch_statistics():
    from train.weight_average import reestimate_batch_norm

    model = _bn_model()
    rng = np.random.default_rng(0)
    # Batches with very different statistics: a momentum-0.99 average would stay near the first.
    batches = [rng.normal(loc, scale, (8, 4, 4, 2)).astype("float32") for loc, scale in ((0, 1), (5, 2), (-3, 0.5))]
    kernel, bias = model.get_layer("conv").get_weights()
    inputs_to_bn = [np.einsum("nhwc,cd->nhwd", b, kernel[0, 0]) + bias for b in batches]

    assert reestimate_batch_norm(model, batches) == 3
    bn = model.get_layer("bn")
    expected_mean = np.mean([x.mean(axis=(0, 1, 2)) for x in inputs_to_bn], axis=0)
    expected_var = np.mean([x.var(axis=(0, 1, 2)) for x in inputs_to_bn], axis=0)
    assert np.allclose(np.asarray(bn.moving_mean), expected_mean, atol=1e-4)
    assert np.allclose(np.asarray(bn.moving_variance), expected_var, rtol=1e-3)
    assert bn.momentum == 0.99  # restored


def test_batches_may_come_with_their_targets():
    from train.weight_average import reestimate_batch_norm

    model = _bn_model()
    x = np.ones((4, 4, 4, 2), "float32")
    assert reestimate_batch_norm(model, [(x, np.zeros(4)), (x, np.zeros(4), np.ones(4))]) == 2


def test_the_average_of_weight_files_is_their_mean(tmp_path):
    from train.weight_average import average_weights

    model = _bn_model()
    first = [np.full_like(w, 1.0) for w in model.get_weights()]
    second = [np.full_like(w, 4.0) for w in model.get_weights()]
    for name, weights in (("a", first), ("b", second)):
        model.set_weights(weights)
        model.save_weights(tmp_path / f"{name}.weights.h5")
    average_weights(model, [tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"])
    assert all(np.allclose(w, 2.5) for w in model.get_weights())


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    """A tiny run trained with --keep-epochs."""
    from train.config import TrainConfig
    from train.fit import fit

    root = tmp_path_factory.mktemp("kept")
    data = write_dataset(root / "data", per_class=24, size=64, patients=12)
    config = TrainConfig(data=str(data), image_size=64, epochs=3, batch_size=8, learning_rate=3e-3, augment=True,
                         filters=(4, 8, 8, 8, 8), dense_units=8, validation_fraction=0.3, keep_epochs=True,
                         early_stopping_patience=3, ema_momentum=0.9)
    fit(config, root / "run", log=lambda m: None)
    return root / "run"


@pytest.mark.slow
def test_fit_keeps_every_epoch(kept_run):
    assert sorted(p.name for p in (kept_run / "epochs").iterdir()) == [f"epoch-0{e}.weights.h5" for e in (1, 2, 3)]


@pytest.mark.slow
def test_an_averaged_run_is_validated_and_exports(kept_run, tmp_path):
    import keras

    from edge_app.classifier import Classifier
    from export.exporter import export_tflite
    from train.config import TrainConfig
    from train.model import build_model
    from train.weight_average import batch_norm_layers

    before = run_fingerprint(kept_run)
    result = runner.invoke(app, ["average", str(kept_run), "--out", str(tmp_path / "avg"), "--epochs", "2-3"])
    assert result.exit_code == 0, result.output
    assert run_fingerprint(kept_run) == before  # the run is only read

    averaged = keras.models.load_model(tmp_path / "avg" / "model.keras", compile=False)
    epochs = build_model(TrainConfig.load(kept_run / "config.json"))
    kernels = []
    for e in (2, 3):
        epochs.load_weights(kept_run / "epochs" / f"epoch-0{e}.weights.h5")
        kernels.append(epochs.get_layer("conv1").get_weights()[0])
    assert np.allclose(averaged.get_layer("conv1").get_weights()[0], np.mean(kernels, axis=0), atol=1e-6)
    # The statistics are re-estimated, not the last epoch's live ones.
    live = [np.asarray(layer.moving_mean) for layer in batch_norm_layers(epochs)]
    assert not all(np.allclose(np.asarray(layer.moving_mean), m) for layer, m in zip(batch_norm_layers(averaged), live))

    metrics = json.loads((tmp_path / "avg" / "metrics.json").read_text())
    assert metrics["weight_average"]["epochs"] == [2, 3] and "shift" in metrics and "stress" in metrics
    assert metrics["weight_average"]["batch_norm"] == "re-estimated" and metrics["weight_average"]["batch_norm_batches"] > 0
    config = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert config["extra"]["weight_average"]["from_run"] == str(kept_run) and config["keep_epochs"] is False
    exported = export_tflite(tmp_path / "avg", quantize="none", out=tmp_path / "m.tflite", verify=False, log=lambda m: None)
    assert 0.0 <= Classifier(exported.path).read(np.full((64, 64), 128, np.uint8), threshold=0.5).probability <= 1.0


@pytest.mark.slow
def test_the_ablation_averages_the_statistics_like_the_weights(kept_run, tmp_path):
    import keras

    from train.config import TrainConfig
    from train.model import build_model
    from train.weight_average import batch_norm_layers

    result = runner.invoke(app, ["average", str(kept_run), "--out", str(tmp_path / "avg"), "--epochs", "1-3",
                                 "--average-batch-norm"])
    assert result.exit_code == 0, result.output
    averaged = keras.models.load_model(tmp_path / "avg" / "model.keras", compile=False)
    epochs = build_model(TrainConfig.load(kept_run / "config.json"))
    means = []
    for e in (1, 2, 3):
        epochs.load_weights(kept_run / "epochs" / f"epoch-0{e}.weights.h5")
        means.append([np.asarray(layer.moving_mean) for layer in batch_norm_layers(epochs)])
    for i, layer in enumerate(batch_norm_layers(averaged)):
        assert np.allclose(np.asarray(layer.moving_mean), np.mean([m[i] for m in means], axis=0), atol=1e-6)
    record = json.loads((tmp_path / "avg" / "metrics.json").read_text())["weight_average"]
    assert record == {"epochs": [1, 3], "batch_norm": "averaged", "batch_norm_batches": 0}


@pytest.mark.slow
def test_a_window_the_run_did_not_keep_is_refused_in_one_line(kept_run, tmp_path):
    result = runner.invoke(app, ["average", str(kept_run), "--out", str(tmp_path / "avg"), "--epochs", "2-5"])
    assert result.exit_code == 2 and "lacks epoch-04.weights.h5, epoch-05.weights.h5" in result.output
    assert not (tmp_path / "avg").exists()  # nothing half-written


def test_a_run_that_kept_no_epochs_is_refused_in_one_line(tmp_path):
    result = runner.invoke(app, ["average", str(tmp_path), "--out", str(tmp_path / "avg"), "--epochs", "1-2"])
    assert result.exit_code == 2 and "kept no epochs (train it with --keep-epochs)" in result.output
    result = runner.invoke(app, ["average", str(tmp_path), "--out", str(tmp_path / "avg"), "--epochs", "2"])
    assert result.exit_code == 2 and "FIRST-LAST" in result.output
