"""Choosing the epoch (train/selection.py): the operating point the shift-robust rule gives, and a
run that keeps the epoch with the best worst-copy specificity."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from train.selection import operating_point


def test_the_operating_point_is_the_shift_robust_threshold_and_the_worst_copy():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    clean = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    # Cropped, the sick films score lower (the threshold must follow them) and two healthy ones higher.
    cropped = np.array([0.1, 0.2, 0.5, 0.55, 0.45, 0.7, 0.8, 0.9])
    point = operating_point(labels, {"clean": clean, "crop_10": cropped}, target=1.0)
    assert point["threshold"] < 0.45  # every sick film found on both sets
    assert point["clean_specificity"] == 0.75 and point["worst_specificity"] == 0.5
    # Without copies the worst is the clean one.
    assert operating_point(labels, {"clean": clean}, 1.0)["worst_specificity"] == 1.0


pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_a_run_keeps_the_epoch_with_the_best_worst_copy_specificity(tiny_dataset, tmp_path):
    import keras

    from train.config import TrainConfig
    from train.data import split_samples
    from train.fit import fit, selection_copies
    from train.loading import load_samples
    from train.model import build_model
    from train.shift import decode_originals

    config = TrainConfig(data=str(tiny_dataset), image_size=64, epochs=4, batch_size=8, learning_rate=3e-3,
                         filters=(4, 8, 8, 8, 8), dense_units=8, validation_fraction=0.3, ema_momentum=0.9,
                         selection_shifts=("crop_10", "aspect_1.25"), select_by="shift-specificity",
                         threshold_rule="shift-robust", sensitivity_target=0.95, keep_epochs=True,
                         early_stopping_patience=4)
    run = tmp_path / "run"
    metrics = fit(config, run, log=lambda m: None)
    with open(run / "history.csv") as f:
        logged = [float(r["val_shift_specificity"]) for r in csv.DictReader(f)]
    assert len(logged) == 4 and metrics["best_epoch"] == int(np.argmax(logged)) + 1

    # Each logged figure is the operating point of that epoch's weights (the EMA ones, as kept).
    val_set = load_samples(split_samples(json.loads((run / "split.json").read_text()), "validation"), config.preprocess)
    copies = selection_copies(val_set, decode_originals([s.path for s in val_set.samples]), config)
    model = build_model(TrainConfig.load(run / "config.json"))
    for epoch, value in enumerate(logged, start=1):
        model.load_weights(run / "epochs" / f"epoch-0{epoch}.weights.h5")
        probabilities = {n: np.asarray(model.predict(x[..., None].astype("float32"), verbose=0)).reshape(-1) for n, x in copies.items()}
        assert operating_point(val_set.labels, probabilities, 0.95)["worst_specificity"] == pytest.approx(value)
    # The checkpoint is the kept epoch the figure chose.
    model.load_weights(run / "epochs" / f"epoch-0{metrics['best_epoch']}.weights.h5")
    best = keras.models.load_model(run / "model.keras", compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(best.get_weights(), model.get_weights()))


def test_the_rule_is_checked_before_any_work(tiny_dataset, tmp_path):
    from train.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--select-by", "loss"])
    assert result.exit_code == 2 and "--select-by must be one of auc, shift-specificity" in result.output
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--select-by", "shift-specificity"])
    assert result.exit_code == 2 and "needs --select-on" in result.output
    assert not (tmp_path / "run").exists()
