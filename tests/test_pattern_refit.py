"""The pattern head's linear re-fit (train/pattern_refit.py): the screening head untouched, a
linear read-out on the pooled features, chosen without the validation films, exported as any run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")
pytest.importorskip("sklearn")

from conftest import run_fingerprint  # noqa: E402
from train.cli import app  # noqa: E402

runner = CliRunner()


@pytest.mark.slow
def test_refit_keeps_the_screening_head_and_makes_the_pattern_head_linear(toy_pattern_run, tmp_path):
    import keras

    import train.heads  # noqa: F401
    from train.model import POOLED_LAYER
    from train.pattern_refit import STRENGTHS

    before = run_fingerprint(toy_pattern_run)
    result = runner.invoke(app, ["refit-pattern", str(toy_pattern_run), "--out", str(tmp_path / "refit"), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert run_fingerprint(toy_pattern_run) == before  # the source run is only read
    old = keras.models.load_model(toy_pattern_run / "model.keras", compile=False)
    new = keras.models.load_model(tmp_path / "refit" / "model.keras", compile=False)
    x = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 1)).astype("float32")
    old_out, new_out = np.asarray(old.predict(x, verbose=0)), np.asarray(new.predict(x, verbose=0))
    assert np.allclose(new_out[:, 0], old_out[:, 0], atol=1e-6)  # the screening probability, exactly
    assert not np.allclose(new_out[:, 1], old_out[:, 1])  # a new pattern read-out
    pooled_width = new.get_layer(POOLED_LAYER).output.shape[-1]
    assert tuple(new.get_layer("pattern_logit").kernel.shape) == (pooled_width, 1)  # one linear layer on gap
    assert "pattern_dense" not in {layer.name for layer in new.layers}
    config = json.loads((tmp_path / "refit" / "config.json").read_text())
    refit = config["extra"]["pattern_refit"]
    assert refit["C"] in STRENGTHS and len(refit["cv"]) == len(STRENGTHS) and refit["training_films"] > 0
    assert "patient-wise" in refit["chosen_by"]
    metrics = json.loads((tmp_path / "refit" / "metrics.json").read_text())
    old_metrics = json.loads((toy_pattern_run / "metrics.json").read_text())
    assert metrics["threshold"] == old_metrics["threshold"] and metrics["shift"] == old_metrics["shift"]
    assert set(metrics["pattern"]["shift"]) >= {"crop_10", "pad_black_25"} and "noise_8" in metrics["pattern"]["stress"]
    assert (tmp_path / "refit" / "split.json").read_text() == (toy_pattern_run / "split.json").read_text()


@pytest.mark.slow
def test_a_refitted_run_exports_and_the_device_reads_its_pattern(toy_pattern_run, tmp_path):
    from edge_app.classifier import Classifier
    from export.exporter import export_tflite
    from train.pattern_refit import refit_pattern_head

    refit_pattern_head(toy_pattern_run, tmp_path / "refit", folds=3, log=lambda m: None)
    exported = export_tflite(tmp_path / "refit", quantize="none", out=tmp_path / "m.tflite", verify=False, log=lambda m: None)
    assert exported.parity["pattern"]["agreement"] == 1.0  # float32: the file's head is the checkpoint's
    pattern = exported.metadata["heads"]["pattern"]
    assert "re-fitted as a linear read-out" in pattern["trained_on"] and pattern["refit"]["C"] > 0
    reading = Classifier(exported.path).read(np.full((64, 64), 128, np.uint8), threshold=0.0)
    assert len(reading.pattern) == 2 and sum(reading.pattern) == pytest.approx(1.0)


def test_the_readout_folds_the_standardisation_into_one_linear_layer():
    from sklearn.linear_model import LogisticRegression

    from train.pattern_refit import fit_readout

    rng = np.random.default_rng(3)
    x = rng.normal(5.0, [1.0, 10.0, 0.1], size=(300, 3))
    y = (x[:, 0] - 5 + 0.1 * (x[:, 1] - 5) + rng.normal(0, 0.5, 300) > 0).astype(int)
    weights, bias = fit_readout(x, y, 0.1)
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    reference = LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000).fit(z, y).decision_function(z)
    assert np.allclose(x @ weights + bias, reference, atol=1e-6)


def test_the_strength_is_chosen_on_patient_folds_of_the_given_films():
    from train.pattern_refit import choose_strength

    rng = np.random.default_rng(4)
    y = np.tile([0, 1], 60)
    x = rng.normal(size=(120, 4)) + y[:, None] * [1.5, 0, 0, 0]
    strength, table = choose_strength(x, y, [f"p{i // 2}" for i in range(120)], strengths=(1e-4, 1.0), folds=4)
    assert [row["C"] for row in table] == [1e-4, 1.0]
    assert strength == max(table, key=lambda r: r["cv_auc"])["C"]
    assert all(row["cv_auc"] > 0.8 for row in table)  # the signal is found whichever strength


def test_a_run_without_a_pattern_head_is_refused_in_one_line(tmp_path):
    from train.config import TrainConfig

    (tmp_path / "binary").mkdir()
    TrainConfig().save(tmp_path / "binary" / "config.json")
    result = runner.invoke(app, ["refit-pattern", str(tmp_path / "binary"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "is not a run with a two-pattern head (trained with --pattern)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
