"""``edge_app.calibration_plots``: two PNGs beside site.json, never over an existing file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_app.calibration import calibrate
from edge_app.calibration_plots import plot_paths, write_plots


def _calibration():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(100, bool), np.ones(150, bool)]
    scores = np.r_[rng.beta(2, 6, 100), rng.beta(6, 2, 150)]
    return labels, scores, calibrate(labels, scores, model_threshold=0.3)


def test_writes_roc_and_tradeoff_pngs_beside_the_profile(tmp_path):
    pytest.importorskip("matplotlib")
    labels, scores, cal = _calibration()
    written = write_plots(labels, scores, cal, tmp_path / "site.json")
    assert [p.name for p in written] == ["site-roc.png", "site-thresholds.png"]
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) >= 400
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn


def test_refuses_to_overwrite_a_plot_without_force(tmp_path):
    pytest.importorskip("matplotlib")
    labels, scores, cal = _calibration()
    roc, _ = plot_paths(tmp_path / "site.json")
    roc.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_plots(labels, scores, cal, tmp_path / "site.json")
    assert roc.read_bytes() == b"keep me"
    write_plots(labels, scores, cal, tmp_path / "site.json", force=True)
    assert roc.read_bytes()[:4] == b"\x89PNG"
