"""``pneumoscan-train``: fit and evaluate through the CLI, and clear errors for bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("tensorflow")

from train.cli import app  # noqa: E402

runner = CliRunner()


def test_missing_data_folder_is_one_line_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "data folder not found" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_wrong_number_of_blocks_is_refused(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--filters", "4,8"])
    assert result.exit_code == 2 and "5 numbers" in result.output


def test_unknown_architecture_is_refused(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--architecture", "resnet50"])
    assert result.exit_code == 2 and "--architecture must be one of cnn, efficientnet-lite0" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def _fit_tiny(data, run) -> None:
    """One epoch of a tiny network through the CLI, into ``run``."""
    fit = runner.invoke(app, [
        "fit", str(data), "--out", str(run), "--epochs", "1", "--image-size", "64",
        "--batch-size", "8", "--filters", "4,8,8,8,8", "--dense-units", "8", "--validation-fraction", "0.3",
    ])
    assert fit.exit_code == 0, fit.output


@pytest.mark.slow
def test_fit_then_evaluate_keras_and_tflite(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    _fit_tiny(tiny_dataset, run)
    result = runner.invoke(app, ["evaluate", str(run / "model.keras"), str(tiny_dataset), "--split", "train", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert "auc" in result.output
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["n"] == 24 and 0.0 <= saved["auc"] <= 1.0
    assert (tmp_path / "ev" / "eval_roc.png").is_file()

    # A checkpoint away from its run's metrics.json has no threshold: the user is told the option.
    (run / "metrics.json").unlink()
    result = runner.invoke(app, ["evaluate", str(run / "model.keras"), str(tiny_dataset), "--split", "train", "--out", str(tmp_path / "ev2")])
    assert result.exit_code == 2 and "no stored threshold" in result.output and "pass --threshold" in result.output
    result = runner.invoke(app, ["evaluate", str(run / "model.keras"), str(tiny_dataset), "--split", "train",
                                 "--out", str(tmp_path / "ev2"), "--threshold", "0.5"])
    assert result.exit_code == 0 and json.loads((tmp_path / "ev2" / "metrics.json").read_text())["threshold"] == 0.5


def test_unknown_selection_perturbation_and_threshold_rule_are_refused(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--select-on", "crop_99"])
    assert result.exit_code == 2 and "unknown perturbation(s) crop_99" in result.output
    result = runner.invoke(app, ["fit", str(tiny_dataset), "--out", str(tmp_path / "run"), "--threshold-rule", "median"])
    assert result.exit_code == 2 and "--threshold-rule must be one of" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_shift_command_rethresholds_a_run(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    _fit_tiny(tiny_dataset, run)
    before = json.loads((run / "metrics.json").read_text())
    result = runner.invoke(app, ["shift", str(run), "--threshold-rule", "shift-robust", "--update", "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "crop_10" in result.output and "worst specificity" in result.output
    after = json.loads((run / "metrics.json").read_text())
    assert after["threshold_rule"].startswith("shift-robust") and before["threshold_rule"] != after["threshold_rule"]
    assert after["shift"]["summary"]["threshold"] == after["threshold"]
    assert json.loads((tmp_path / "s.json").read_text())["summary"]["threshold"] == after["threshold"]


@pytest.mark.realdata
def test_evaluate_the_shipped_tflite_on_real_films(shared_data, tmp_path):
    """The evaluate command scores a .tflite through the device classifier."""
    import shutil

    from edge_app.model_file import DEFAULT_MODEL

    root = tmp_path / "few"
    for folder in ("NORMAL", "PNEUMONIA"):
        (root / folder).mkdir(parents=True)
        for src in sorted((shared_data / "train" / folder).iterdir())[:15]:
            shutil.copy(src, root / folder / src.name)
    result = runner.invoke(app, ["evaluate", str(DEFAULT_MODEL), str(root), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 30 and metrics["auc"] > 0.9


def _recipe_params(*extra: str) -> dict:
    """scripts/shipped-recipe.sh's flags (and ``extra`` after them) as `fit` parses them."""
    import subprocess

    import typer.main

    repo = Path(__file__).resolve().parents[1]
    printed = subprocess.run(
        ["bash", "-c", 'source scripts/shipped-recipe.sh && printf "%s\\n" "${recipe[@]}"'],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    group = typer.main.get_command(app)
    parent = group.make_context("pneumoscan-train", ["fit"])
    fit = group.get_command(parent, "fit")
    return fit.make_context("fit", ["DATA", "--out", "RUN", *printed, *extra], parent=parent).params


def test_the_shipped_recipe_is_the_shipped_model_s():
    """scripts/shipped-recipe.sh (sourced by make-model.sh and make-pattern-model.sh) parses as
    `fit` options, so a renamed flag breaks this test rather than the next reproduction, and they
    are the flags the bundled model's contract says it was trained with."""
    from edge_app.contract import read_metadata

    model = Path(__file__).resolve().parents[1] / "edge_app" / "models" / "pneumoscan-int8.tflite"
    trained = read_metadata(model)["source"]["train_config"]
    params = _recipe_params()
    renamed = {"patience": "early_stopping_patience", "select_on": "selection_shifts"}
    for flag in ("epochs", "patience", "image_size", "batch_size", "consistency", "ema_momentum", "select_on", "select_by",
                 "threshold_rule", "sensitivity_target", "split_order", "seed", "normalization", "crop_area_min",
                 "crop_area_max", "aspect_jitter", "marker_probability", "band_probability", "blur_probability",
                 "label_smoothing", "mixup", "noise_probability"):
        got = params[flag].split(",") if flag == "select_on" else params[flag]
        assert got == trained[renamed.get(flag, flag)], flag


def test_the_pattern_model_pins_its_own_seed_and_epoch_rule():
    """scripts/make-pattern-model.sh appends --seed 43 --select-by auc to the shipped recipe (the
    flags its model was made with); a later option wins, so the recipe cannot override them."""
    params = _recipe_params("--pattern", "--image-size", "160", "--seed", "43", "--select-by", "auc")
    assert params["seed"] == 43 and params["select_by"] == "auc" and params["image_size"] == 160
    pattern_script = (Path(__file__).resolve().parents[1] / "scripts" / "make-pattern-model.sh").read_text()
    assert '"${recipe[@]}" --pattern --image-size 160 --seed 43 --select-by auc' in pattern_script
