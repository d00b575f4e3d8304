"""End to end: a tiny run on images the test makes, and one on real X-rays when present."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from train.config import TrainConfig  # noqa: E402
from train.data import DataError  # noqa: E402
from train.fit import fit  # noqa: E402

RUN_FILES = {
    "model.keras",
    "config.json",
    "split.json",
    "history.csv",
    "metrics.json",
    "training_curves.png",
    "validation_roc.png",
    "validation_confusion.png",
    "validation_scores.npy",
}


def tiny_config(data, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), image_size=64, epochs=2, batch_size=8, filters=(4, 8, 8, 8, 8),
        dense_units=8, validation_fraction=0.3,
    )
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.slow
def test_fit_writes_a_complete_run_folder(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    metrics = fit(tiny_config(tiny_dataset), run, log=lambda m: None)
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert metrics["epochs_run"] == 2
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1", "confusion", "threshold", "threshold_rule", "stress", "shift"):
        assert key in saved
    split = json.loads((run / "split.json").read_text())
    assert split["train"] and split["validation"]
    assert set(split["train"]).isdisjoint(split["validation"])
    config = json.loads((run / "config.json").read_text())
    assert config["preprocessing"]["id"] == "gray-64px-percentile-v1"
    assert len(config["extra"]["data"]["fingerprint"]) == 64
    assert (run / "history.csv").read_text().count("\n") == 3  # header + 2 epochs


@pytest.mark.slow
def test_fit_with_framing_augmentation_shifted_selection_and_the_shift_robust_threshold(tiny_dataset, tmp_path):
    from train.shift import PERTURBATIONS

    config = tiny_config(
        tiny_dataset, crop_area_min=0.3, crop_area_max=2.25, aspect_jitter=1.25, marker_probability=0.5,
        band_probability=0.3, ema_momentum=0.9, selection_shifts=("crop_10", "aspect_1.25"),
        threshold_rule="shift-robust", sensitivity_target=0.95,
    )
    metrics = fit(config, tmp_path / "run", log=lambda m: None)
    assert metrics["threshold_rule"].startswith("shift-robust")
    shift = metrics["shift"]
    assert set(PERTURBATIONS) <= set(shift) and shift["summary"]["threshold"] == metrics["threshold"]
    for name in PERTURBATIONS:
        assert shift[name]["sensitivity"] >= 0.95 and 0.0 <= shift[name]["flip_rate"] <= 1.0
    assert shift["clean"]["auc"] == pytest.approx(metrics["auc"], abs=0.02)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["selection_shifts"] == ["crop_10", "aspect_1.25"] and saved["threshold_rule"] == "shift-robust"


@pytest.mark.slow
def test_fit_with_mixup_on_paired_views_trains_and_refuses_pattern_runs(tiny_dataset, tmp_path):
    from tests.conftest import write_dataset

    config = tiny_config(tiny_dataset, mixup=0.4, consistency=0.3, crop_area_min=0.5, crop_area_max=1.5)
    metrics = fit(config, tmp_path / "run", log=lambda m: None)
    assert metrics["epochs_run"] == 2 and 0.0 <= metrics["auc"] <= 1.0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["mixup"] == 0.4
    pattern_data = write_dataset(tmp_path / "pattern-data", per_class=12, size=64, patients=6, viral=True)
    with pytest.raises(DataError, match="mixup"):
        fit(tiny_config(pattern_data, mixup=0.4, pattern=True), tmp_path / "pattern-run", log=lambda m: None)
    assert not (tmp_path / "pattern-run").exists()  # refused before the run folder is made


@pytest.mark.slow
def test_fit_refuses_to_overwrite_and_names_bad_files(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        fit(tiny_config(tiny_dataset), run, log=lambda m: None)
    assert (run / "keep.txt").read_text() == "mine"

    bad = tiny_dataset / "train" / "NORMAL" / "IM-0099-0001.jpeg"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="IM-0099-0001.jpeg"):
        fit(tiny_config(tiny_dataset), tmp_path / "run2", log=lambda m: None)
    metrics = fit(tiny_config(tiny_dataset, epochs=1, skip_bad=True), tmp_path / "run3", log=lambda m: None)
    assert metrics["epochs_run"] == 1


@pytest.mark.slow
@pytest.mark.realdata
def test_fit_on_real_xrays(shared_data, tmp_path):
    """One epoch on 300 real films (patient-wise split) learns something above chance."""
    import shutil

    root = tmp_path / "real"
    for folder, count in (("NORMAL", 150), ("PNEUMONIA", 150)):
        target = root / "train" / folder
        target.mkdir(parents=True)
        for src in sorted((shared_data / "train" / folder).iterdir())[:count]:
            shutil.copy(src, target / src.name)
    metrics = fit(tiny_config(root, epochs=3, filters=(8, 16, 16, 32, 32), dense_units=16, validation_fraction=0.25, image_size=96), tmp_path / "run", log=lambda m: None)
    assert metrics["auc"] > 0.7


@pytest.mark.slow
def test_same_seed_gives_the_same_model(tiny_dataset, tmp_path):
    import numpy as np

    scores = []
    for name in ("a", "b"):
        fit(tiny_config(tiny_dataset, epochs=1), tmp_path / name, log=lambda m: None)
        scores.append(np.load(tmp_path / name / "validation_scores.npy"))
    assert np.array_equal(scores[0], scores[1])
