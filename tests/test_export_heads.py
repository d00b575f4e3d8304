"""End to end with more than two classes: toy data sets train, export and screen on the device.

Two layouts: three plain class folders (normal / bacterial / viral, PNG, no naming scheme), and
the Kermany layout with ``--pattern`` (the kind in the PNEUMONIA file names). Each trains a tiny
model with :func:`train.fit.fit`, exports it through :func:`export.exporter.export_tflite` and
screens films with the device's own CLI. The toy films' patterns are opacities in either lung.

The exports skip the parity gate (``verify=False``): a toy model's logits are too close together
for int8 to keep every decision, and that says nothing about the code. Parity is still measured
and recorded for both heads, and the float32 export must match the checkpoint exactly. What a
toy model learns is not asserted; what the device does with any model's outputs is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import synthetic_film, write_class_folders, write_dataset

#: Small and quick, yet enough steps for batch-norm statistics to settle (as the tiny model's).
TOY = dict(image_size=64, epochs=8, batch_size=4, learning_rate=3e-3, augment=False, filters=(4, 8, 8, 8, 8),
           dense_units=8, validation_fraction=0.3, early_stopping_patience=8)


def _screen(model: Path, folder: Path) -> dict[str, dict]:
    from edge_app.cli import app

    films = {"clear": (0.0, 0.7), "right": (1.0, 0.7), "left": (1.0, 0.3)}
    for name, (opacity, side) in films.items():
        Image.fromarray(synthetic_film(64, seed=99, opacity=opacity, side=side)).save(folder / f"{name}.png")
    out = CliRunner().invoke(app, ["predict", "--model", str(model), "--no-gate", "--format", "json",
                                   *(str(folder / f"{n}.png") for n in films)])
    assert out.exit_code == 0, out.output
    return {Path(r["path"]).stem: r for r in json.loads(out.output[out.output.index("["):])}


def _train_and_export(data: Path, run: Path, quantize: str, **options):
    from export.exporter import export_tflite
    from train.config import TrainConfig
    from train.fit import fit

    metrics = fit(TrainConfig(data=str(data), **{**TOY, **options}), run, log=lambda m: None)
    return metrics, export_tflite(run, quantize=quantize, out=run / f"model-{quantize}.tflite", verify=False,
                                  log=lambda m: None)


@pytest.mark.slow
def test_three_class_folders_train_export_and_screen(tmp_path):
    data = write_class_folders(tmp_path / "data", {"normal": (0.0, 0.7), "bacterial": (1.0, 0.7), "viral": (1.0, 0.3)},
                               per_class=30)
    metrics, exported = _train_and_export(data, tmp_path / "run", "int8")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["extra"]["labels"]["patterns"] == ["bacterial", "viral"]
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["patterns"]["validation"]) == len(split["validation"])
    # metrics.json and the contract carry the pattern validation with intervals
    assert set(metrics["pattern"]["all_pattern_films"]["ci95"]) >= {"auc", "sensitivity", "specificity"}
    assert set(metrics["pattern"]["stress"]) >= {"blur_x2", "jpeg_q20"}
    heads = exported.metadata["heads"]
    assert heads["screening"]["threshold"] == exported.metadata["threshold"]
    assert heads["screening"]["labels"] == ["NORMAL", "PNEUMONIA"] == exported.metadata["labels"]
    assert heads["pattern"]["labels"] == ["bacterial", "viral"] and heads["pattern"]["output"] == "logit"
    assert "auc" in heads["pattern"]["validation"]["all_pattern_films"]
    # parity was measured for both heads, through the device runtime
    assert exported.parity["pattern"]["images"] == sum(p != -1 for p in split["patterns"]["validation"])
    assert exported.parity["heatmap"]["images"] > 0 and exported.parity["pattern"]["agreement"] is not None
    results = _screen(exported.path, tmp_path)
    for r in results.values():
        assert set(r) >= {"pattern", "pattern_score"}
        assert (r["pattern"] is None) == (r["label"] == "NORMAL")
        if r["pattern"] is not None:
            assert r["pattern"] in ("bacterial", "viral") and 50 <= r["pattern_score"] <= 100


@pytest.mark.slow
def test_kermany_pattern_option_trains_exports_and_screens(tmp_path):
    from edge_app.classifier import Classifier

    data = write_dataset(tmp_path / "data", per_class=40, size=64, patients=20, viral=True)
    # the shipped model's recipe: framing augmentation, paired views, EMA, shift selection and threshold
    recipe = dict(augment=True, crop_area_min=0.5, crop_area_max=1.5, marker_probability=0.5, consistency=0.3,
                  ema_momentum=0.99, selection_shifts=("crop_10",), threshold_rule="shift-robust",
                  sensitivity_target=0.9)
    metrics, exported = _train_and_export(data, tmp_path / "run", "none", pattern=True, **recipe)
    assert metrics["pattern"]["patterns"] == ["bacterial", "viral"]
    assert metrics["threshold_rule"].startswith("shift-robust")
    # the pattern head's harder validation: every shift perturbation, summarised
    assert set(metrics["pattern"]["shift"]) >= {"crop_10", "pad_black_25", "jpeg_q30"}
    assert metrics["pattern"]["shift_summary"]["min_auc"] <= metrics["pattern"]["shift_summary"]["mean_auc"]
    assert exported.metadata["heads"]["pattern"]["validation"]["keras_run"]["shift_summary"]
    assert exported.metadata["heads"]["pattern"]["display"]["viral"] == "viral pneumonia"
    # float32: the file's pattern head is the checkpoint's, exactly
    assert exported.parity["pattern"]["agreement"] == 1.0
    assert exported.parity["pattern"]["max_abs_probability_diff"] < 1e-4
    classifier = Classifier(exported.path)
    assert classifier.contract.pattern.labels == ("bacterial", "viral")
    # evaluate reads the pattern labels from the file names again and scores the file's pattern head
    from train.evaluate import evaluate

    evaluated = evaluate(exported.path, data, tmp_path / "eval", None, split="train")
    assert evaluated["pattern"]["all_pattern_films"]["counts"] == {"bacterial": 20, "viral": 20}
    assert 0.0 <= evaluated["pattern"]["called_positive"].get("accuracy", 0.0) <= 1.0
    results = _screen(exported.path, tmp_path)
    for r in results.values():  # what a toy model learns varies; what the device shows must not
        assert (r["pattern"] is None) == (r["label"] == "NORMAL")
        assert r["pattern"] in (None, "bacterial", "viral")


@pytest.mark.slow
def test_four_class_folders_get_a_softmax_pattern_head(tmp_path):
    from edge_app.classifier import Classifier
    from export.graph import export_graph
    from export.run import load_model, locate_run
    from train.config import TrainConfig
    from train.fit import fit

    looks = {"healthy": (0.0, 0.7), "a": (1.0, 0.7), "b": (1.0, 0.3), "c": (2.0, 0.5)}
    data = write_class_folders(tmp_path / "data", looks, per_class=16)
    config = TrainConfig(data=str(data), negative_class="healthy", **{**TOY, "epochs": 2})
    metrics = fit(config, tmp_path / "run", log=lambda m: None)
    assert metrics["pattern"]["all_pattern_films"]["counts"].keys() == {"a", "b", "c"}
    assert "auc_one_vs_rest" in metrics["pattern"]["all_pattern_films"]
    graph = export_graph(load_model(locate_run(tmp_path / "run")))
    assert tuple(graph.outputs[2].shape) == (None, 3)
    from export.exporter import export_tflite

    exported = export_tflite(tmp_path / "run", quantize="none", out=tmp_path / "m.tflite", log=lambda m: None)
    contract = Classifier(exported.path).contract
    assert contract.pattern.output == "logits" and contract.labels == ("NORMAL", "PNEUMONIA")
    reading = Classifier(exported.path).read(np.full((64, 64), 128, np.uint8), threshold=0.0)
    assert len(reading.pattern) == 3 and sum(reading.pattern) == pytest.approx(1.0)


def test_pattern_parity_counts_only_films_with_a_pattern_and_fails_on_disagreement():
    from export.heads import pattern_failures, pattern_parity

    patterns = np.array([-1, 0, 0, 1, 1])
    reference = np.array([[0.5, 0.5], [0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    same = pattern_parity(patterns, reference, reference.copy())
    assert same["images"] == 4 and same["agreement"] == 1.0 and same["auc_drop"] == 0.0
    assert pattern_failures(same) == []
    flipped = reference.copy()
    flipped[3] = [0.6, 0.4]  # one viral film now read as bacterial
    report = pattern_parity(patterns, reference, flipped)
    assert report["disagreements"] == 1
    assert any("pattern decisions agree on 75.0%" in p for p in pattern_failures(report))


def test_heads_section_is_what_the_device_parses():
    from edge_app.contract import parse_heads, OutputSpec
    from export.heads import heads_section
    from train.labels import resolve_scheme

    scheme = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)
    section = heads_section(scheme, 0.42, {"auc": 0.9})
    outputs = {"logit": OutputSpec("a", 0, (1, 1)), "pattern": OutputSpec("b", 1, (1, 1))}
    data = {"output": "logit", "heads": section}
    head = parse_heads(data, ("NORMAL", "PNEUMONIA"), 0.42, outputs)
    assert head.labels == ("bacterial", "viral") and head.words("viral") == "viral pneumonia"
    assert section["pattern"]["label_scheme"]["kind"] == "kermany-pattern"
    assert "antibiotics" in section["pattern"]["limits"]
