"""Which model is used: --model, then $PNEUMOSCAN_MODEL, then the shipped one."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_app import model_file
from edge_app.contract import ContractError
from edge_app.model_file import ENV_VAR, load_classifier, resolve_model_path
from edge_helpers import tiny_model  # noqa: F401


def test_explicit_beats_environment_beats_default(monkeypatch, tmp_path):
    shipped = tmp_path / "shipped.tflite"
    shipped.write_bytes(b"x")
    monkeypatch.setattr(model_file, "DEFAULT_MODEL", shipped)
    monkeypatch.setenv(ENV_VAR, "/from/env.tflite")
    assert resolve_model_path("given.tflite") == Path("given.tflite")
    assert resolve_model_path() == Path("/from/env.tflite")
    monkeypatch.delenv(ENV_VAR)
    assert resolve_model_path() == shipped


def test_default_model_is_package_data():
    assert model_file.DEFAULT_MODEL.parent == Path(model_file.__file__).parent / "models"
    assert model_file.DEFAULT_MODEL.name == "pneumoscan-int8.tflite"


def test_missing_default_says_how_to_get_a_model(monkeypatch, tmp_path):
    monkeypatch.setattr(model_file, "DEFAULT_MODEL", tmp_path / "pneumoscan-int8.tflite")
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ContractError, match="--model FILE or set PNEUMOSCAN_MODEL"):
        resolve_model_path()


def test_load_drops_only_the_runtime_start_up_noise(tiny_model, capfd):
    classifier = load_classifier(tiny_model, threads=2)
    assert classifier.threads == 2
    captured = capfd.readouterr()
    assert "XNNPACK" not in captured.err
