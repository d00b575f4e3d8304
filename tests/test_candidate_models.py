"""The candidate models committed beside the shipped one (models/candidates/): each still loads
through the device with a valid contract, and the folder's README describes exactly these files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_app.classifier import Classifier
from edge_app.contract import read_contract, read_metadata
from edge_app.gate import FEATURES_VERSION

FOLDER = Path(__file__).resolve().parents[1] / "models" / "candidates"
CANDIDATES = sorted(FOLDER.glob("*.tflite"))


def test_there_are_at_most_three_and_the_readme_names_each():
    assert 1 <= len(CANDIDATES) <= 3  # issue 11: up to three, beside the shipped model
    readme = (FOLDER / "README.md").read_text(encoding="utf-8")
    for path in CANDIDATES:
        assert f"`{path.name}`" in readme
        assert read_metadata(path)["version"] in readme


@pytest.mark.parametrize("path", CANDIDATES, ids=[p.stem for p in CANDIDATES])
def test_a_candidate_loads_with_its_contract_and_screens_a_film(path):
    metadata = read_metadata(path)
    assert path.stat().st_size <= 500_000
    assert json.loads(Path(f"{path}.json").read_text()) == metadata
    assert metadata["labels"] == ["NORMAL", "PNEUMONIA"] and metadata["quantization"]["mode"] == "int8"
    assert metadata["gate"]["features_version"] == FEATURES_VERSION
    contract = read_contract(path)
    shift = metadata["validation_metrics"]["shift"]["summary"]
    assert shift["threshold"] == pytest.approx(contract.threshold)
    size = metadata["image_size"]
    film = np.random.default_rng(0).integers(0, 256, (size, size)).astype(np.uint8)
    reading = Classifier(path).read(film, threshold=contract.threshold)
    assert 0.0 <= reading.probability <= 1.0
