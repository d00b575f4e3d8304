"""The Classifier on the tiny int8 model: contract checks, quantisation, probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_film
from edge_app.classifier import Classifier, sigmoid
from edge_app.contract import ContractError, write_metadata
from edge_app.preprocessing import prepare_file
from edge_helpers import expected_runtime, model_flatbuffer, tiny_model, tiny_pattern_model  # noqa: F401


@pytest.fixture
def classifier(tiny_model) -> Classifier:
    return Classifier(tiny_model)


def relabelled(tiny_model: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the tiny model carrying changed metadata."""
    copy = tmp_path / "copy.tflite"
    copy.write_bytes(model_flatbuffer(tiny_model))
    metadata = json.loads(Path(f"{tiny_model}.json").read_text())
    metadata.update(changes)
    write_metadata(copy, metadata)
    return copy


def test_loads_contract_and_runtime(classifier):
    assert classifier.runtime == expected_runtime()
    assert classifier.contract.labels == ("NORMAL", "PNEUMONIA")
    assert classifier.preprocess.image_size == 64
    assert classifier.input_details["shape"] == [1, 64, 64, 1]
    assert classifier.input_details["dtype"] == "uint8"
    assert classifier.output_details["dtype"] == "float32"


def test_classify_gives_a_probability(classifier):
    images = np.stack([synthetic_film(64, seed=s, opacity=s % 2) for s in range(4)])
    probabilities = classifier.predict_batch(images)
    assert probabilities.shape == (4,) and np.all((probabilities > 0) & (probabilities < 1))
    assert classifier.classify(images[0]) == probabilities[0]  # deterministic
    assert classifier.raw_output(images[0]) == pytest.approx(np.log(probabilities[0] / (1 - probabilities[0])), abs=1e-6)


def test_classifier_does_not_decode_files():
    """Inference depends on no file decoding: the classifier module imports neither
    :mod:`edge_app.decoding` nor :mod:`edge_app.dicom` (screening one file is the Screener's job)."""
    import ast
    import inspect

    from edge_app import classifier as module

    tree = ast.parse(inspect.getsource(module))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"edge_app.decoding", "edge_app.dicom", "edge_app.paths"}
    assert not hasattr(Classifier, "classify_file")


def test_sigmoid_is_stable():
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0
    assert np.isfinite(sigmoid(np.array([-1e6, 1e6]))).all()


def test_output_kind_is_checked_against_the_graph(tiny_model, tmp_path):
    # The tiny model ends in a dense layer (a logit): calling it a probability would print
    # "score -322/100" or put PNEUMONIA on a score of 4.
    with pytest.raises(ContractError, match="says the output is a probability, but the model does not end in a sigmoid"):
        Classifier(relabelled(tiny_model, tmp_path, output="probability"))


def test_missing_model(tmp_path):
    with pytest.raises(ContractError, match="model file not found"):
        Classifier(tmp_path / "none.tflite")


def test_model_without_metadata(tiny_model, tmp_path):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(model_flatbuffer(tiny_model))
    with pytest.raises(ContractError, match="carries no pneumoscan metadata"):
        Classifier(bare)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"image_size": 128, "preprocessing_id": "gray-128px-percentile-v1",
             "preprocessing": {"image_size": 128, "normalization": "percentile", "version": 1}},
            "input shape",
        ),
        ({"input_dtype": "int8"}, "input type uint8 contradicts its metadata int8"),
    ],
)
def test_metadata_contradicting_the_interpreter(tiny_model, tmp_path, changes, message):
    with pytest.raises(ContractError, match=message):
        Classifier(relabelled(tiny_model, tmp_path, **changes))


def test_not_a_tflite_file(tiny_model, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 1024)
    write_metadata(junk, json.loads(Path(f"{tiny_model}.json").read_text()))
    with pytest.raises(ContractError, match="not a loadable TFLite model"):
        Classifier(junk)


# --- a model with a pattern head -------------------------------------------------------------


def test_pattern_model_reads_its_pattern_only_over_the_threshold(tiny_pattern_model, tmp_path):
    from edge_helpers import pattern_films

    classifier = Classifier(tiny_pattern_model)
    films = {k: prepare_file(p, classifier.preprocess).pixels for k, p in pattern_films(tmp_path).items()}
    clear, bacterial, viral = (classifier.read(films[k]) for k in ("clear", "bacterial", "viral"))
    assert clear.probability < classifier.contract.threshold and clear.pattern is None
    assert bacterial.pattern[0] > bacterial.pattern[1]  # (P(bacterial), P(viral))
    assert viral.pattern[1] > viral.pattern[0]
    assert sum(viral.pattern) == pytest.approx(1.0)
    # the screening output is the same one classify() reads, whatever is asked for
    assert classifier.classify(films["viral"]) == viral.probability
    assert classifier.read(films["clear"], threshold=0.0).pattern is not None


def test_pattern_model_outputs_are_found_by_their_recorded_names(tiny_pattern_model, tmp_path):
    metadata = json.loads(Path(f"{tiny_pattern_model}.json").read_text())
    swapped = dict(metadata["outputs"])
    swapped["logit"], swapped["pattern"] = (
        {**metadata["outputs"]["logit"], "name": metadata["outputs"]["pattern"]["name"]},
        {**metadata["outputs"]["pattern"], "name": "no-such-tensor"},
    )
    with pytest.raises(ContractError, match="no-such-tensor"):
        Classifier(relabelled(tiny_pattern_model, tmp_path, outputs=swapped))


def test_two_class_model_has_no_pattern(classifier):
    film = synthetic_film(64, opacity=1.0)
    assert classifier.contract.pattern is None
    assert classifier.read(film, threshold=0.0).pattern is None
    with pytest.raises(ContractError, match="no pattern head"):
        classifier.pattern_probabilities()
