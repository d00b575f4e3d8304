"""`bench`: timing and memory figures, on a synthetic film or a given image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app.bench import SYNTHETIC_SIZE, peak_rss_mb, run_bench, synthetic_xray
from edge_app.classifier import Classifier
from edge_app.preprocessing import ImageError
from edge_helpers import expected_runtime, tiny_model  # noqa: F401


def test_synthetic_xray_looks_like_a_film():
    img = synthetic_xray()
    assert img.shape == (SYNTHETIC_SIZE[1], SYNTHETIC_SIZE[0]) and img.dtype == np.uint8
    assert img.std() > 10
    assert np.array_equal(synthetic_xray(200, 100, seed=1), synthetic_xray(200, 100, seed=1))


def test_run_bench_on_synthetic_image(tiny_model):
    report = run_bench(Classifier(tiny_model, threads=2), runs=4, warmup=1)
    data = report.to_dict()
    assert data["threads"] == 2 and data["runtime"] == expected_runtime() and data["runs"] == 4
    assert "synthetic" in data["image"]
    for part in ("preprocess", "inference", "total"):
        assert 0 < data[part]["median_ms"] <= data[part]["p95_ms"]
    assert data["peak_rss_mb"] == pytest.approx(peak_rss_mb(), rel=0.5)
    assert any("p95" in line for line in report.lines())


def test_run_bench_on_given_image(tiny_model, tmp_path):
    path = tmp_path / "f.png"
    Image.fromarray(synthetic_film(128)).save(path)
    assert run_bench(Classifier(tiny_model), path, runs=2, warmup=0).image == str(path)
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        run_bench(Classifier(tiny_model), tmp_path / "bad.png", runs=1)
    with pytest.raises(ValueError):
        run_bench(Classifier(tiny_model), path, runs=0)
