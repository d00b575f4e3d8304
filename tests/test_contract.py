"""The model contract: what metadata a model must carry, and how it is validated."""

from __future__ import annotations

import json
import zipfile

import pytest

from edge_app.contract import ContractError, ModelContract, read_contract, read_metadata, write_metadata
from edge_app.preprocessing import PreprocessSpec


def valid() -> dict:
    return {
        "format": "pneumoscan-model/1",
        "labels": ["NORMAL", "PNEUMONIA"],
        "image_size": 64,
        "channels": 1,
        "input_dtype": "uint8",
        "output": "logit",
        "threshold": 0.5,
        "uncertain_band": [0.4, 0.6],
        "version": "test",
        "preprocessing": PreprocessSpec(64).to_dict(),
        "metrics": {"val_auc": 0.9},
    }


def test_valid_contract_parses_and_keeps_every_key():
    contract = ModelContract.from_dict(valid())
    assert contract.labels == ("NORMAL", "PNEUMONIA")
    assert contract.positive_label == "PNEUMONIA" and contract.negative_label == "NORMAL"
    assert contract.image_size == 64 and contract.uncertain_band == (0.4, 0.6)
    assert contract.raw["metrics"] == {"val_auc": 0.9}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other/2"}, "format 'other/2'"),
        ({"labels": ["A"]}, "two distinct names"),
        ({"labels": ["A", "A"]}, "two distinct names"),
        ({"output": "softmax"}, "output 'softmax'"),
        ({"threshold": 0.0}, "threshold: 0 is not between 0 and 1"),
        ({"threshold": 1.2}, "threshold: 1.2 is not between 0 and 1"),
        ({"uncertain_band": [0.6, 0.7]}, "does not contain threshold"),
        ({"image_size": 128}, "disagrees with its preprocessing"),
        ({"preprocessing": {"image_size": 64, "normalization": "magic"}}, "preprocessing is invalid"),
        ({"preprocessing": {}}, "preprocessing is invalid"),
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
    assert read_metadata(model) == valid()
    assert json.loads((tmp_path / "m.tflite.json").read_text()) == valid()
    assert read_contract(model).version == "test"
    with pytest.raises(ContractError, match="already carries metadata"):
        write_metadata(model, valid())


def test_write_refuses_an_invalid_contract(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    with pytest.raises(ContractError):
        write_metadata(model, {**valid(), "threshold": 2})
    assert model.read_bytes() == b"TFL3"


def test_read_errors(tmp_path):
    with pytest.raises(ContractError, match="not found"):
        read_metadata(tmp_path / "none.tflite")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(b"TFL3" * 10)
    with pytest.raises(ContractError, match="carries no pneumoscan metadata"):
        read_metadata(plain)
    broken = tmp_path / "broken.tflite"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("metadata.json", "{not json")
    with pytest.raises(ContractError, match="unreadable metadata"):
        read_metadata(broken)


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
