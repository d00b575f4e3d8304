"""``export.metadata`` and the run/calibration bookkeeping: plain numpy, no TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.calibration import deterministic_sample
from export.errors import ExportError
from export.exporter import check_output
from export.metadata import _clean, model_version, uncertain_band
from export.run import locate_run
from train.data import Sample


def test_band_edges_follow_the_documented_rule():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(200, int), np.ones(200, int)]
    scores = np.r_[rng.beta(2, 5, 200), rng.beta(5, 2, 200)]
    threshold = 0.4
    (low, high), _ = uncertain_band(labels, scores, threshold)
    assert low <= threshold <= high
    assert (scores[labels == 1] < low).mean() <= 0.01  # at most 1% of pneumonias below the band
    assert (scores[labels == 0] >= high).mean() <= 0.05  # at most 5% of normals above it
    assert (scores[labels == 1] < np.nextafter(low, 1)).sum() >= 1  # and the edge is tight


def test_band_always_contains_the_threshold():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])  # perfectly separated
    for threshold in (0.05, 0.5, 0.95):
        (low, high), _ = uncertain_band(labels, scores, threshold)
        assert low <= threshold <= high


def test_no_band_without_both_classes():
    band, rule = uncertain_band(np.ones(5, int), np.linspace(0.1, 0.9, 5), 0.5)
    assert band is None and "one of the classes" in rule


def test_version_is_package_plus_weights_hash():
    assert model_version("ab" * 32, "0.1.0") == "0.1.0+abababababab"
    assert model_version("ab" * 32, "0.0.0+source") == "0.0.0+source.abababababab"


def test_clean_makes_json_safe():
    cleaned = _clean({"a": float("nan"), "b": np.float32(0.5), "c": [np.int64(3), float("inf")]})
    assert cleaned == {"a": None, "b": 0.5, "c": [3, None]}
    json.dumps(cleaned, allow_nan=False)


def test_deterministic_sample_is_seeded_and_order_free():
    samples = [Sample(Path(f"/d/NORMAL/{i}.png"), 0, str(i), "") for i in range(50)]
    first = deterministic_sample(samples, 10, seed=1)
    assert first == deterministic_sample(list(reversed(samples)), 10, seed=1)
    assert first != deterministic_sample(samples, 10, seed=2)
    assert len(deterministic_sample(samples, 500, seed=1)) == 50


def test_locate_run_names_what_is_missing(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        locate_run(tmp_path / "nope")
    with pytest.raises(ExportError, match="has no model.keras checkpoint"):
        locate_run(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ExportError, match="config.json is missing"):
        locate_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"image_size": 64}))
    with pytest.raises(ExportError, match="metrics.json is missing"):
        locate_run(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"auc": 0.9}))
    with pytest.raises(ExportError, match="no threshold"):
        locate_run(tmp_path / "model.keras")
    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": 0.4}))
    (tmp_path / "split.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        locate_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"image_size": 7}))
    with pytest.raises(ExportError, match="config.json is invalid"):
        locate_run(tmp_path)


def test_output_must_not_exist_unless_forced(tmp_path):
    out = tmp_path / "m.tflite"
    check_output(out, force=False)
    Path(f"{out}.json").write_text("{}")
    with pytest.raises(ExportError, match=r"m\.tflite\.json already exists \(use --force"):
        check_output(out, force=False)
    check_output(out, force=True)
    with pytest.raises(ExportError, match="should end in .tflite"):
        check_output(tmp_path / "m.bin", force=True)
