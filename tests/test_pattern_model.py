"""The second, pattern model committed at ``models/pattern/`` (made by scripts/make-pattern-model.sh).

It is not the shipped model (that one stays two-class); these tests check that the file is what
its README says: small enough, both heads verified at export, its validation record complete,
and that the device reads it (screening and pattern) through the same classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from edge_app.classifier import Classifier
from edge_app.contract import read_metadata

PATTERN_MODEL = REPO / "models" / "pattern" / "pneumoscan-pattern-int8.tflite"

pytestmark = pytest.mark.skipif(not PATTERN_MODEL.is_file(), reason="no pattern model committed")


def test_small_and_int8():
    assert PATTERN_MODEL.stat().st_size <= 500_000
    classifier = Classifier(PATTERN_MODEL)
    assert classifier.input_details["dtype"] == "uint8"
    assert classifier.contract.pattern.labels == ("bacterial", "viral")


def test_both_heads_passed_parity_and_the_record_is_complete():
    metadata = read_metadata(PATTERN_MODEL)
    assert metadata == json.loads(Path(f"{PATTERN_MODEL}.json").read_text())
    assert metadata["parity"]["passed"] is True
    assert metadata["parity"]["pattern"]["agreement"] >= 0.98
    validation = metadata["heads"]["pattern"]["validation"]
    for key in ("all_pattern_films", "called_positive"):
        assert {"auc", "sensitivity", "specificity", "ci95"} <= set(validation[key])
    assert metadata["heads"]["screening"]["threshold"] == metadata["threshold"]


def test_reads_real_films(shared_data):
    from edge_app.preprocessing import prepare_file

    classifier = Classifier(PATTERN_MODEL)
    files = sorted((shared_data / "train" / "PNEUMONIA").glob("*.jpeg"))[:10]
    readings = [classifier.read(prepare_file(f, classifier.preprocess).pixels, threshold=0.0) for f in files]
    assert all(r.pattern is not None and np.isclose(sum(r.pattern), 1.0) for r in readings)
