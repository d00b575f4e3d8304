"""Grafting a pattern network onto a screening run (train/pattern_graft.py): the screening output
stays the screening run's, the pattern head is the pattern run's, and the result exports and
screens like a ``--pattern`` run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")

from conftest import run_fingerprint, write_dataset  # noqa: E402
from train.cli import app  # noqa: E402
from train.labels import NO_PATTERN  # noqa: E402
from train.pattern_graft import validation_patterns  # noqa: E402

runner = CliRunner()
TOY = dict(image_size=64, epochs=2, batch_size=4, learning_rate=3e-3, augment=False, filters=(4, 8, 8, 8, 8),
           dense_units=8, validation_fraction=0.3, early_stopping_patience=2)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(screening run, pattern run, data): a two-class run on a toy Kermany layout, and a
    two-class bacterial-vs-viral run on its PNEUMONIA films alone (a CSV, bacterial negative)
    whose backbone starts from the screening run's."""
    from train.config import TrainConfig
    from train.fit import fit

    root = tmp_path_factory.mktemp("graft")
    data = write_dataset(root / "data", per_class=24, size=64, patients=12, viral=True)
    fit(TrainConfig(data=str(data), **TOY), root / "screening", log=lambda m: None)
    films = sorted((data / "train" / "PNEUMONIA").iterdir())
    rows = [f"{f},{'viral' if '_virus_' in f.name else 'bacterial'},{f.name.split('_')[0]}" for f in films]
    (root / "patterns.csv").write_text("path,label,patient\n" + "\n".join(rows) + "\n")
    # Started from the screening run's backbone (train/warm_start.py), as the shipped graft is.
    fit(TrainConfig(data=str(root / "patterns.csv"), negative_class="bacterial", init_from=str(root / "screening"), **TOY),
        root / "pattern", log=lambda m: None)
    return root / "screening", root / "pattern", data


def test_validation_patterns_come_from_the_file_names_and_skip_films_the_pattern_run_saw():
    paths = ["a/IM-0001-0001.jpeg", "b/person1_bacteria_1.jpeg", "b/person2_virus_3.jpeg", "b/person3_virus_4.jpeg"]
    patterns, left_out = validation_patterns(paths, [0, 1, 1, 1], trained_on={"person3_virus_4.jpeg"})
    assert patterns == [NO_PATTERN, 0, 1, NO_PATTERN] and left_out == 1


@pytest.mark.slow
def test_the_screening_output_stays_and_the_pattern_run_becomes_the_head(two_runs, tmp_path):
    import keras

    screening_run, pattern_run, _ = two_runs
    before = run_fingerprint(screening_run), run_fingerprint(pattern_run)
    result = runner.invoke(app, ["graft-pattern", str(screening_run), str(pattern_run), "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert (run_fingerprint(screening_run), run_fingerprint(pattern_run)) == before  # both only read
    x = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 1)).astype("float32")
    load = lambda p: keras.models.load_model(p / "model.keras", compile=False)  # noqa: E731
    grafted = np.asarray(load(tmp_path / "g").predict(x, verbose=0))
    assert grafted.shape == (6, 2)
    assert np.allclose(grafted[:, 0], np.asarray(load(screening_run).predict(x, verbose=0))[:, 0], atol=1e-6)
    assert np.allclose(grafted[:, 1], np.asarray(load(pattern_run).predict(x, verbose=0))[:, 0], atol=1e-6)

    pattern_config = json.loads((pattern_run / "config.json").read_text())
    assert pattern_config["extra"]["init_from"]["layers"][-1] == "features"  # the warm start is recorded
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["extra"]["labels"]["patterns"] == ["bacterial", "viral"]
    assert config["extra"]["pattern_graft"]["pattern_run"] == str(pattern_run)
    metrics = json.loads((tmp_path / "g" / "metrics.json").read_text())
    old = json.loads((screening_run / "metrics.json").read_text())
    assert metrics["threshold"] == old["threshold"] and metrics["shift"] == old["shift"]
    assert metrics["pattern"]["all_pattern_films"]["n"] > 0
    split = json.loads((tmp_path / "g" / "split.json").read_text())
    pattern_train = {Path(p).name for p in json.loads((pattern_run / "split.json").read_text())["train"]}
    for path, pattern in zip(split["validation"], split["patterns"]["validation"]):
        if Path(path).name in pattern_train:
            assert pattern == NO_PATTERN  # a film the pattern run trained on is not validation
    assert config["extra"]["pattern_graft"]["validation_films_left_out"] == sum(
        Path(p).name in pattern_train for p, lab in zip(split["validation"], split["labels"]["validation"]) if lab == 1
    )


@pytest.mark.slow
def test_the_grafted_run_exports_and_the_device_reads_its_pattern(two_runs, tmp_path):
    import keras

    from edge_app.classifier import Classifier
    from export.exporter import export_tflite
    from train.pattern_graft import graft_pattern

    screening_run, pattern_run, _ = two_runs
    graft_pattern(screening_run, pattern_run, tmp_path / "g", log=lambda m: None)
    exported = export_tflite(tmp_path / "g", quantize="none", out=tmp_path / "m.tflite", verify=False, log=lambda m: None)
    pattern = exported.metadata["heads"]["pattern"]
    assert pattern["labels"] == ["bacterial", "viral"] and "network of its own" in pattern["trained_on"]
    image = np.random.default_rng(1).integers(0, 256, (64, 64)).astype(np.uint8)
    reading = Classifier(exported.path).read(image, threshold=0.0)  # called positive: the pattern is read
    keras_viral = keras.models.load_model(pattern_run / "model.keras", compile=False).predict(image[None, ..., None].astype("float32"), verbose=0)
    assert reading.pattern is not None and abs(sum(reading.pattern) - 1.0) < 1e-6
    assert abs(reading.pattern[1] - float(np.asarray(keras_viral).reshape(-1)[0])) < 1e-4  # P(viral) is the pattern run's


def test_runs_that_cannot_be_grafted_are_refused_in_one_line(tmp_path):
    from train.config import TrainConfig

    for name, labels in (("screening", None), ("pattern", {"kind": "binary", "classes": ["cat", "dog"], "screening": ["NORMAL", "PNEUMONIA"]})):
        (tmp_path / name).mkdir()
        config = TrainConfig()
        if labels:
            config.extra["labels"] = labels
        config.save(tmp_path / name / "config.json")
    result = runner.invoke(app, ["graft-pattern", str(tmp_path / "screening"), str(tmp_path / "pattern"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "['cat', 'dog']" in result.output and "--negative-class bacterial" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
