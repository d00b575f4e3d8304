"""The committed ``tests/data/tiny-int8.tflite``: what the edge app's tests rely on, without TensorFlow.

Rebuild it with ``tests/data/make_tiny_model.py`` (a real export of a tiny synthetic run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier
from edge_app.contract import read_metadata
from edge_app.gate import FEATURES_VERSION

TINY_MODEL = Path(__file__).resolve().parent / "data" / "tiny-int8.tflite"


def test_small_enough_to_commit():
    assert TINY_MODEL.stat().st_size < 200_000


def test_loads_in_the_device_classifier_and_scores():
    classifier = Classifier(TINY_MODEL)
    assert classifier.contract.input_dtype == "uint8"
    assert classifier.contract.image_size == 64
    scores = classifier.predict_batch(np.stack([np.full((64, 64), v, np.uint8) for v in (0, 128, 255)]))
    assert np.all((scores >= 0) & (scores <= 1))


def test_json_beside_matches_the_embedded_contract():
    assert read_metadata(TINY_MODEL) == json.loads(Path(f"{TINY_MODEL}.json").read_text())


def test_carries_heatmap_output_and_gate_statistics():
    metadata = read_metadata(TINY_MODEL)
    assert metadata["outputs"]["heatmap"]["shape"] == [1, 2, 2, 1]
    assert metadata["outputs"]["logit"]["position"] == 0
    assert metadata["gate"]["features_version"] == FEATURES_VERSION
    assert metadata["parity"]["passed"] is True
