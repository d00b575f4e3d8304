"""Cutting a pattern run down to its screening head (train/screening_only.py): the same
screening output, a two-class run that exports and screens like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")

from conftest import run_fingerprint  # noqa: E402
from train.cli import app  # noqa: E402

runner = CliRunner()


@pytest.mark.slow
def test_the_screening_head_stays_and_the_pattern_head_goes(toy_pattern_run, tmp_path):
    import keras

    before = run_fingerprint(toy_pattern_run)
    result = runner.invoke(app, ["screening-only", str(toy_pattern_run), "--out", str(tmp_path / "cut")])
    assert result.exit_code == 0, result.output
    assert run_fingerprint(toy_pattern_run) == before  # the source run is only read
    old = keras.models.load_model(toy_pattern_run / "model.keras", compile=False)
    new = keras.models.load_model(tmp_path / "cut" / "model.keras", compile=False)
    x = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 1)).astype("float32")
    old_out, new_out = np.asarray(old.predict(x, verbose=0)), np.asarray(new.predict(x, verbose=0))
    assert old_out.shape == (6, 2) and new_out.shape == (6, 1)  # [screening, P(viral)] -> [screening]
    assert np.allclose(new_out[:, 0], old_out[:, 0], atol=1e-6)
    assert not any(layer.name.startswith("pattern") for layer in new.layers)

    config = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert config["pattern"] is False and config["extra"]["labels"]["patterns"] == []
    assert config["extra"]["screening_only"]["from_run"] == str(toy_pattern_run)
    metrics = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    old_metrics = json.loads((toy_pattern_run / "metrics.json").read_text())
    assert "pattern" not in metrics and "pattern" in old_metrics
    assert metrics["threshold"] == old_metrics["threshold"] and metrics["shift"] == old_metrics["shift"]
    assert metrics["params"] < old_metrics["params"]


@pytest.mark.slow
def test_the_cut_run_exports_as_a_two_class_model(toy_pattern_run, tmp_path):
    from edge_app.classifier import Classifier
    from export.exporter import export_tflite
    from train.screening_only import screening_only

    screening_only(toy_pattern_run, tmp_path / "cut")
    exported = export_tflite(tmp_path / "cut", quantize="none", out=tmp_path / "m.tflite", verify=False, log=lambda m: None)
    assert "heads" not in exported.metadata
    reading = Classifier(exported.path).read(np.full((64, 64), 128, np.uint8), threshold=0.5)
    assert not reading.pattern and 0.0 <= reading.probability <= 1.0


def test_a_run_without_a_pattern_head_is_refused_in_one_line(tmp_path):
    from train.config import TrainConfig

    (tmp_path / "binary").mkdir()
    TrainConfig().save(tmp_path / "binary" / "config.json")
    result = runner.invoke(app, ["screening-only", str(tmp_path / "binary"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "has no pattern head" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
