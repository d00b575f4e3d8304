"""Runtime choice: LiteRT, then tflite_runtime, then tensorflow.lite; forced by PNEUMOSCAN_RUNTIME.

Fake modules stand in for the runtimes, so these tests never import TensorFlow.
"""

from __future__ import annotations

import types

import pytest

from edge_app import runtime
from edge_app.runtime import RUNTIMES, RuntimeUnavailable, find_interpreter


def fake_runtimes(monkeypatch, installed: set[str]) -> dict[str, type]:
    """Make ``importlib.import_module`` inside ``edge_app.runtime`` see only ``installed``."""
    classes = {name: type(f"{name}Interpreter", (), {}) for name, _, _ in RUNTIMES}
    modules = {module: name for name, module, _ in RUNTIMES}
    imported = []

    def import_module(module_name: str):
        imported.append(module_name)
        name = modules[module_name]
        if name not in installed:
            raise ImportError(f"No module named {module_name!r}")
        return types.SimpleNamespace(Interpreter=classes[name])

    monkeypatch.setattr(runtime.importlib, "import_module", import_module)
    monkeypatch.delenv("PNEUMOSCAN_RUNTIME", raising=False)
    classes["imported"] = imported
    return classes


def test_preference_order():
    assert [name for name, _, _ in RUNTIMES] == ["litert", "tflite_runtime", "tensorflow"]


def test_litert_first(monkeypatch):
    classes = fake_runtimes(monkeypatch, {"litert", "tflite_runtime", "tensorflow"})
    assert find_interpreter() == ("litert", classes["litert"])
    assert classes["imported"] == ["ai_edge_litert.interpreter"]  # nothing heavier was tried


def test_falls_back_to_tflite_runtime(monkeypatch):
    classes = fake_runtimes(monkeypatch, {"tflite_runtime", "tensorflow"})
    assert find_interpreter() == ("tflite_runtime", classes["tflite_runtime"])


def test_falls_back_to_tensorflow(monkeypatch):
    classes = fake_runtimes(monkeypatch, {"tensorflow"})
    assert find_interpreter() == ("tensorflow", classes["tensorflow"])
    assert classes["imported"][-1] == "tensorflow.lite.python.interpreter"


def test_none_installed_says_how_to_install(monkeypatch):
    fake_runtimes(monkeypatch, set())
    with pytest.raises(RuntimeUnavailable, match=r"no TFLite runtime found .*pip install 'pneumoscan\[edge\]'"):
        find_interpreter()


def test_module_without_interpreter_is_skipped(monkeypatch):
    classes = fake_runtimes(monkeypatch, {"tflite_runtime"})
    real = runtime.importlib.import_module

    def broken_litert(name):
        if name == "ai_edge_litert.interpreter":
            return types.SimpleNamespace()  # a half-installed build
        return real(name)

    monkeypatch.setattr(runtime.importlib, "import_module", broken_litert)
    assert find_interpreter() == ("tflite_runtime", classes["tflite_runtime"])


def test_forced_by_argument_and_environment(monkeypatch):
    classes = fake_runtimes(monkeypatch, {"litert", "tflite_runtime", "tensorflow"})
    assert find_interpreter("tensorflow") == ("tensorflow", classes["tensorflow"])
    monkeypatch.setenv("PNEUMOSCAN_RUNTIME", "tflite_runtime")
    assert find_interpreter() == ("tflite_runtime", classes["tflite_runtime"])


def test_forced_runtime_missing_does_not_fall_back(monkeypatch):
    fake_runtimes(monkeypatch, {"litert"})
    with pytest.raises(RuntimeUnavailable, match="tflite_runtime"):
        find_interpreter("tflite_runtime")


def test_unknown_runtime(monkeypatch):
    fake_runtimes(monkeypatch, {"litert"})
    with pytest.raises(RuntimeUnavailable, match="unknown runtime 'onnx'; one of litert, tflite_runtime, tensorflow"):
        find_interpreter("onnx")
