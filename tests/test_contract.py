"""The model contract: what metadata a model must carry, and how it is validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_app.contract import (
    ContractError,
    ModelContract,
    integrity_digest,
    metadata_archive,
    read_contract,
    read_metadata,
    read_model,
    seal_model,
    split_model,
    write_metadata,
)
from edge_app.preprocessing import PreprocessSpec
from edge_helpers import minimal_contract


def valid() -> dict:
    return minimal_contract()


def test_valid_contract_parses_and_keeps_every_key():
    contract = ModelContract.from_dict(valid())
    assert contract.labels == ("NORMAL", "PNEUMONIA")
    assert contract.positive_label == "PNEUMONIA" and contract.negative_label == "NORMAL"
    assert contract.image_size == 64 and contract.uncertain_band == (0.4, 0.6)
    assert contract.raw["metrics"] == {"val_auc": 0.9}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other/2"}, 'format "other/2"'),
        ({"labels": ["A"]}, "two distinct names"),
        ({"labels": ["A", "A"]}, "two distinct names"),
        ({"output": "softmax"}, 'output "softmax"'),
        ({"threshold": 0.0}, "threshold: 0 is not between 0 and 1"),
        ({"threshold": 1.2}, "threshold: 1.2 is not between 0 and 1"),
        ({"uncertain_band": [0.6, 0.7]}, "does not contain threshold"),
        ({"image_size": 128}, "disagrees with its preprocessing"),
        ({"preprocessing": {"image_size": 64, "normalization": "magic"}}, "preprocessing is invalid"),
        ({"preprocessing": {}}, "preprocessing is invalid"),
        # what the hostile field test tried (issue 13, cases 3 and 4)
        ({"threshold": "abc"}, "threshold must be a number"),
        ({"threshold": None}, "threshold must be a number"),
        ({"threshold": True}, "threshold must be a number"),
        ({"image_size": "abc"}, "image_size must be a whole number"),
        ({"image_size": 64.5}, "image_size must be a whole number"),
        ({"labels": 5}, "two distinct names, got 5"),
        ({"labels": ["PNEUMONIA", "NORMAL"]}, r"not \["),
        ({"labels": ["NORMAL", "COVID"]}, r"not \["),
        ({"uncertain_band": "x"}, "uncertain_band must be"),
        ({"uncertain_band": [0.4]}, "uncertain_band must be"),
        ({"uncertain_band": [0.6, 0.4]}, "not 0 <= low <= high <= 1"),
        ({"uncertain_band": ["a", 0.6]}, "must be a number"),
        ({"channels": 3}, "channels must be 1"),
        ({"input_dtype": 7}, "input_dtype 7 not in"),
        ({"version": ""}, "version must be"),
        ({"version": 12}, "version must be"),
        ({"preprocessing": {**PreprocessSpec(64).to_dict(), "normalization": "equalize"}}, "contradicts its preprocessing"),
        ({"preprocessing_id": "gray-64px-equalize-v1"}, "preprocessing_id .* contradicts"),
        ({"preprocessing": {**PreprocessSpec(64).to_dict(), "version": 99, "id": "gray-64px-percentile-v99"}}, "version 99 is not this device's"),
        ({"preprocessing": "percentile"}, "must be an object"),
        ({"weights_sha256": "abc"}, "not a SHA-256"),
        ({"gate": "x"}, "gate must be an object"),
        ({"gate": {"features_version": 2, "features": {"mean": {"low": 0}}}}, "lacks high"),
        ({"gate": {"features_version": 2, "features": {"mean": dict(low="a", high=1, q_low=0, q_high=1, median=0.5, iqr=0.1)}}}, "must be a number"),
        ({"gate": {"features_version": 2, "features": {"mean": dict(low=1, high=0, q_low=0, q_high=1, median=0.5, iqr=0.1)}}}, "not ordered"),
        ({"gate": {"features_version": "2", "features": {}}}, "features_version must be"),
        ({"gate": {"features_version": 2, "max_unusual": -1, "features": {}}}, "max_unusual"),
        ({"outputs": {"heatmap": {"shape": "x"}}}, "outputs.heatmap is malformed"),
    ],
)
def test_invalid_contracts_are_refused(change, message):
    with pytest.raises(ContractError, match=message):
        ModelContract.from_dict({**valid(), **change})


@pytest.mark.parametrize("key", ["labels", "threshold", "version", "preprocessing"])
def test_missing_keys_are_named(key):
    data = valid()
    del data[key]
    with pytest.raises(ContractError, match=f"lacks {key}"):
        ModelContract.from_dict(data)


def test_input_details_check():
    contract = ModelContract.from_dict(valid())
    contract.check_input_details((1, 64, 64, 1), "uint8")
    with pytest.raises(ContractError, match="input shape"):
        contract.check_input_details((1, 128, 128, 1), "uint8")
    with pytest.raises(ContractError, match="input type"):
        contract.check_input_details((1, 64, 64, 1), "float32")


def test_write_and_read_back(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" + b"\x00" * 100)
    write_metadata(model, valid())
    assert model.read_bytes().startswith(b"TFL3" + b"\x00" * 100)  # flatbuffer untouched
    stored = read_metadata(model)
    assert stored.pop("integrity")["sha256"] == integrity_digest(b"TFL3" + b"\x00" * 100, valid())
    assert stored == valid()
    assert json.loads((tmp_path / "m.tflite.json").read_text()) == read_metadata(model)
    assert read_contract(model).version == "test"
    with pytest.raises(ContractError, match="already carries metadata"):
        write_metadata(model, valid())


def test_write_refuses_an_invalid_contract(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(ContractError):
        write_metadata(model, {**valid(), "threshold": 2})
    assert model.read_bytes() == b"TFL3"


def test_metadata_that_is_not_an_object_is_refused():
    for data in ([], "x", 5, None):
        with pytest.raises(ContractError, match="must be a JSON object"):
            ModelContract.from_dict(data)


def test_read_errors(tmp_path):
    with pytest.raises(ContractError, match="not found"):
        read_metadata(tmp_path / "none.tflite")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(b"TFL3" * 10)
    with pytest.raises(ContractError, match="carries no pneumoscan metadata"):
        read_metadata(plain)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3" * 10 + metadata_archive(b"{not json", 40))
    with pytest.raises(ContractError, match="unreadable metadata"):
        read_metadata(broken)


# --- integrity ---------------------------------------------------------------------------------

TINY = Path(__file__).parent / "data" / "tiny-int8.tflite"


def _copy_tiny(tmp_path) -> Path:
    copy = tmp_path / "m.tflite"
    copy.write_bytes(TINY.read_bytes())
    return copy


def test_shipped_and_test_models_are_sealed():
    from edge_app.model_file import DEFAULT_MODEL

    for model in (TINY, DEFAULT_MODEL):
        data = model.read_bytes()
        flatbuffer, _ = split_model(data)
        stored = read_metadata(model)
        assert stored["integrity"]["sha256"] == integrity_digest(flatbuffer, stored)
        assert json.loads(Path(f"{model}.json").read_text()) == stored


def test_a_flipped_bit_anywhere_in_the_flatbuffer_or_the_contract_is_refused(tmp_path):
    data = TINY.read_bytes()
    flatbuffer, _ = split_model(data)
    rng = np.random.default_rng(0)
    weights = rng.choice(len(flatbuffer), size=150, replace=False)  # graph and weights, sampled
    # the archive's bookkeeping (headers, directory), every byte; the contract's JSON, sampled
    header, trailer = range(len(flatbuffer), len(flatbuffer) + 43), range(len(data) - 22 - 59, len(data))
    text = rng.choice(range(header.stop, trailer.start), size=200, replace=False)
    contract_bytes = [*header, *text, *trailer]
    model = tmp_path / "flipped.tflite"
    for position in [*weights, *contract_bytes]:
        flipped = bytearray(data)
        flipped[position] ^= 1 << int(rng.integers(8))
        model.write_bytes(bytes(flipped))
        with pytest.raises(ContractError) as err:
            read_model(model)
        assert "\n" not in str(err.value)


def test_unsealed_and_edited_models_are_refused_and_seal_restores_one(tmp_path):
    from edge_helpers import model_with_metadata, tiny_metadata

    unsealed = model_with_metadata(tmp_path / "old.tflite", {**tiny_metadata(), "integrity": None}, seal=False)
    with pytest.raises(ContractError, match="carries no integrity seal.*pneumoscan-export seal FILE"):
        read_model(unsealed)
    edited = model_with_metadata(tmp_path / "edited.tflite", {**tiny_metadata(), "threshold": 0.01}, seal=False)
    with pytest.raises(ContractError, match="damaged or was modified"):
        read_model(edited)
    assert seal_model(unsealed) == read_metadata(unsealed)["integrity"]["sha256"]
    assert read_model(unsealed).flatbuffer == split_model(TINY.read_bytes())[0]
    assert read_contract(unsealed).threshold == read_contract(TINY).threshold


def test_seal_command(tmp_path):
    from typer.testing import CliRunner

    from edge_helpers import model_with_metadata, tiny_metadata
    from export.cli import app

    model = model_with_metadata(tmp_path / "old.tflite", {**tiny_metadata(), "integrity": None}, seal=False)
    done = CliRunner().invoke(app, ["seal", str(model)])
    assert done.exit_code == 0 and "sealed, sha256" in done.stdout
    assert read_contract(model).version == tiny_metadata()["version"]
    done = CliRunner().invoke(app, ["seal", str(tmp_path / "none.tflite")])
    assert done.exit_code == 2


# --- the heads section -----------------------------------------------------------------------


def with_heads(**pattern_changes) -> dict:
    data = valid()
    data["outputs"] = {
        "logit": {"name": "out:0", "position": 0, "shape": [1, 1]},
        "pattern": {"name": "out:1", "position": 1, "shape": [1, 1]},
    }
    data["heads"] = {
        "screening": {"output": "logit", "tensor": "logit", "labels": ["NORMAL", "PNEUMONIA"], "threshold": 0.5},
        "pattern": {
            "output": "logit",
            "tensor": "pattern",
            "labels": ["bacterial", "viral"],
            "applies_when": "screening positive",
            "display": {"viral": "viral pneumonia"},
            **pattern_changes,
        },
    }
    return data


def test_heads_section_parses_into_a_pattern_head():
    contract = ModelContract.from_dict(with_heads())
    assert contract.pattern.labels == ("bacterial", "viral")
    assert contract.pattern.output == "logit" and contract.pattern.tensor.name == "out:1"
    assert contract.pattern.words("viral") == "viral pneumonia"
    assert contract.pattern.words("bacterial") == "bacterial"


def test_a_contract_without_heads_is_a_two_class_model():
    assert ModelContract.from_dict(valid()).pattern is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": ["viral"]}, "two or more"),
        ({"labels": ["a", "b", "c"]}, "does not fit 3 labels"),
        ({"output": "probability"}, "not in"),
        ({"applies_when": "always"}, "applies_when"),
        ({"tensor": "missing"}, "does not describe"),
    ],
)
def test_bad_pattern_heads_are_refused(change, message):
    with pytest.raises(ContractError, match=message):
        ModelContract.from_dict(with_heads(**change))


def test_screening_head_must_agree_with_the_top_level_contract():
    data = with_heads()
    data["heads"]["screening"]["threshold"] = 0.7
    with pytest.raises(ContractError, match="threshold"):
        ModelContract.from_dict(data)
    data = with_heads()
    data["heads"]["screening"]["labels"] = ["PNEUMONIA", "NORMAL"]
    with pytest.raises(ContractError, match="labels"):
        ModelContract.from_dict(data)


def test_softmax_pattern_needs_one_logit_per_label():
    data = with_heads(output="logits", labels=["a", "b", "c"])
    with pytest.raises(ContractError, match=r"expected \[1, 3\]"):
        ModelContract.from_dict(data)
    data["outputs"]["pattern"]["shape"] = [1, 3]
    assert ModelContract.from_dict(data).pattern.output == "logits"
