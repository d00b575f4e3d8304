"""The Screener: one result per input, never an exception for a bad image."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app import screening
from edge_app.classifier import Classifier
from edge_app.paths import PathItem
from edge_app.preprocessing import ModelInput, prepare_file
from edge_app.results import Result
from edge_app.screening import Screener, Summary
from edge_helpers import HOSTILE, tiny_model, write_hostile_inputs  # noqa: F401


@pytest.fixture
def classifier(tiny_model) -> Classifier:
    return Classifier(tiny_model)


def reference_probability(classifier: Classifier, path) -> float:
    """P(pneumonia) computed without the Screener or the Classifier: the preprocessed pixels fed
    straight to a fresh interpreter, the logit read back and put through a plain sigmoid."""
    from edge_app.runtime import find_interpreter

    _, interpreter_class = find_interpreter()
    interpreter = interpreter_class(model_path=str(classifier.model_path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    assert source["quantization"] == (1.0, 0) and source["dtype"] == np.uint8  # raw pixels in
    pixels = prepare_file(path, classifier.preprocess).pixels
    interpreter.set_tensor(source["index"], pixels.reshape(source["shape"]))
    interpreter.invoke()
    (score,) = [o for o in interpreter.get_output_details() if int(np.prod(o["shape"])) == 1]
    value = interpreter.get_tensor(score["index"]).astype(np.float64).reshape(-1)[0]
    scale, zero_point = score["quantization"]
    if scale:
        value = (value - zero_point) * scale
    return float(1.0 / (1.0 + np.exp(-value))) if classifier.contract.output == "logit" else float(value)


def test_screen_gives_a_complete_result(classifier, tmp_path):
    path = tmp_path / "film.jpeg"
    Image.fromarray(synthetic_film(128)).save(path)
    result = Screener(classifier).screen(path)
    assert result.ok and result.path == str(path)
    assert result.probability == pytest.approx(reference_probability(classifier, path), abs=1e-6)
    contract = classifier.contract
    assert result.threshold == contract.threshold and result.model_version == contract.version
    assert result.latency_ms > 0


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_never_raise(classifier, tmp_path, name):
    paths = write_hostile_inputs(tmp_path)
    result = Screener(classifier, gate=False).screen(paths[name])  # decoding, not gating
    reason = HOSTILE[name][1]
    if reason is None:
        assert result.ok, result.error
    else:
        assert not result.ok and reason in result.error and "\n" not in result.error


def test_known_errors_pass_through(classifier):
    result = Screener(classifier).screen(PathItem("x.jpeg", "broken link (its target does not exist)"))
    assert result.to_dict() == {"path": "x.jpeg", "error": "broken link (its target does not exist)"}


def test_unexpected_exception_becomes_a_one_line_error(classifier, monkeypatch):
    def explode(path, spec, **options):
        raise KeyError("weird EXIF tag\nsecond line")

    monkeypatch.setattr(screening, "decode_file", explode)
    result = Screener(classifier).screen("a.jpeg")
    assert result.error.startswith("unexpected error (KeyError") and "\n" not in result.error


def test_decoder_warnings_go_to_the_callback(classifier, monkeypatch):
    def noisy(path, spec, **options):
        warnings.warn("Possibly corrupt EXIF data", UserWarning)
        return ModelInput(np.zeros((64, 64), np.uint8))

    monkeypatch.setattr(screening, "decode_file", noisy)
    seen = []
    screener = Screener(classifier, on_warning=lambda p, m: seen.append((p, m)), gate=False)
    result = screener.screen("a.jpeg")
    assert result.ok and seen == [("a.jpeg", "Possibly corrupt EXIF data")]


def test_threshold_override_and_validation(classifier, tmp_path):
    path = tmp_path / "film.png"
    Image.fromarray(synthetic_film(96)).save(path)
    assert Screener(classifier, threshold=0.001).screen(path).label == "PNEUMONIA"
    assert Screener(classifier, threshold=0.999).screen(path).label == "NORMAL"
    for bad in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="threshold"):
            Screener(classifier, threshold=bad)


def test_screen_all_keeps_order(classifier, tmp_path):
    paths = write_hostile_inputs(tmp_path)
    names = sorted(HOSTILE)
    results = list(Screener(classifier).screen_all(str(paths[n]) for n in names))
    assert [r.path for r in results] == [str(paths[n]) for n in names]


def test_summary_counts():
    results = [
        Result("a", 0.9, 90, "PNEUMONIA", False),
        Result("b", 0.55, 55, "PNEUMONIA", True),
        Result("c", 0.1, 10, "NORMAL", False),
        Result("d", 0.45, 45, "NORMAL", True),
        Result("e", error="empty file"),
    ]
    assert Summary.of(results) == Summary(total=5, likely=1, uncertain=2, clear=1, failed=1)


def test_screen_bytes_is_screen_of_the_same_file(classifier, tmp_path):
    """An upload screened from its bytes gives the result the same file gives from disk, under
    the name it was sent with, and leaves no temporary file behind."""
    import tempfile

    path = tmp_path / "film.png"
    Image.fromarray(synthetic_film(96, opacity=1.0)).save(path)
    before = set(Path(tempfile.gettempdir()).glob("pneumoscan-*"))
    from_disk = Screener(classifier).screen(path).to_dict()
    uploaded = Screener(classifier).screen_bytes(path.read_bytes(), "ward3/upload.png").to_dict()
    assert uploaded.pop("path") == "ward3/upload.png" and from_disk.pop("path") == str(path)
    uploaded.pop("latency_ms"), from_disk.pop("latency_ms")
    assert uploaded == from_disk
    refused = Screener(classifier).screen_bytes(b"not an image", "x.jpeg")
    assert refused.path == "x.jpeg" and "not an image" in refused.error
    assert set(Path(tempfile.gettempdir()).glob("pneumoscan-*")) == before
