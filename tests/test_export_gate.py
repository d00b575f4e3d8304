"""``edge_app.gate``: the input-gate statistics export stores and the device will compare against.

Lives beside the export tests because export is what fits the ranges; nothing here needs
TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import synthetic_film
from edge_app.gate import FEATURE_NAMES, FEATURES_VERSION, fit_gate, image_features, out_of_range


@pytest.fixture(scope="module")
def films() -> list[np.ndarray]:
    return [synthetic_film(64, seed=i, opacity=float(i % 2)) for i in range(40)]


def test_features_have_stable_names_and_plain_floats(film):
    features = image_features(film, colourfulness=0.0)
    assert tuple(features) == FEATURE_NAMES
    assert all(type(v) is float and np.isfinite(v) for v in features.values())


def test_chest_like_film_reads_as_one(film):
    f = image_features(film, colourfulness=0.0)
    assert f["lr_symmetry"] > 0.5  # two lung fields mirror each other
    assert f["mediastinum_contrast"] > 0.1  # bright centre between dark lungs
    assert 0.0 <= f["dark_fraction"] <= 1.0 and 0.0 <= f["bright_fraction"] <= 1.0


def test_uniform_image_has_no_structure():
    f = image_features(np.full((64, 64), 200, np.uint8), colourfulness=0.0)
    assert f["std"] == pytest.approx(0.0, abs=1e-9) and f["edge_energy"] == 0.0
    assert f["gray_levels"] == pytest.approx(1 / 256)
    assert f["lr_symmetry"] == 0.0  # constant halves: nothing to correlate, not "perfectly symmetric"


def test_rejects_wrong_input():
    with pytest.raises(ValueError, match="2-D uint8"):
        image_features(np.zeros((64, 64, 3), np.uint8), colourfulness=0.0)
    with pytest.raises(ValueError, match="2-D uint8"):
        image_features(np.zeros((64, 64), np.float32), colourfulness=0.0)


def test_fitted_ranges_contain_the_training_images(films):
    gate = fit_gate(image_features(img, colourfulness=0.0) for img in films)
    assert gate["features_version"] == FEATURES_VERSION and gate["n_images"] == len(films)
    assert set(gate["features"]) == set(FEATURE_NAMES)
    for limits in gate["features"].values():
        assert limits["low"] <= limits["median"] <= limits["high"] and limits["iqr"] >= 0
    assert all(out_of_range(image_features(img, colourfulness=0.0), gate) == [] for img in films)


def test_non_xrays_fall_outside(films):
    gate = fit_gate(image_features(img, colourfulness=0.0) for img in films)
    blank = np.full((64, 64), 255, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    stripes = np.tile(np.repeat(np.array([0, 255], np.uint8), 4), (64, 8))
    for img in (blank, noise, stripes):
        assert out_of_range(image_features(img, colourfulness=0.0), gate)


def test_natural_photo_falls_outside(films, tmp_path):
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from edge_app.preprocessing import PreprocessSpec, prepare_file

    gate = fit_gate(image_features(img, colourfulness=0.0) for img in films)
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    photo = prepare_file(tmp_path / "astronaut.png", PreprocessSpec(image_size=64)).pixels
    assert out_of_range(image_features(photo, colourfulness=0.0), gate)


def test_refuses_ranges_from_another_feature_version(films):
    gate = fit_gate(image_features(img, colourfulness=0.0) for img in films)
    with pytest.raises(ValueError, match="features version"):
        out_of_range(image_features(films[0], colourfulness=0.0), {**gate, "features_version": FEATURES_VERSION + 1})
    with pytest.raises(ValueError, match="at least one image"):
        fit_gate([])
