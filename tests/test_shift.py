"""The shift validation: each perturbation changes the original film as it says, inputs come from
the device's preprocessing, and the report's flip rates and deltas are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_app.preprocessing import PreprocessSpec, prepare_file
from tests.conftest import synthetic_film
from train.shift import (
    PERTURBATIONS,
    Film,
    aspect,
    bands,
    black_corner,
    crop,
    decode_originals,
    model_inputs,
    pad,
    shift,
    shift_report,
)

SPEC = PreprocessSpec(image_size=64, normalization="percentile")


@pytest.fixture
def films(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"f{i}.png"
        Image.fromarray(synthetic_film(120, seed=i, opacity=i % 2)).save(path)
        paths.append(path)
    return paths, decode_originals(paths)


def test_framing_changes_do_what_their_names_say():
    g = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    assert crop(g, 0.10).shape == (80, 64) and crop(g, 0.10)[0, 0] == g[10, 8]
    padded = pad(g, 0.25, "edge")
    assert padded.shape == (150, 120) and padded[0, 0] == g[0, 0] and padded[-1, -1] == g[-1, -1]
    black = pad(g, 0.10, "black")
    assert black[:10].max() == 0 and np.array_equal(black[10:110, 8:88], g)
    right = shift(g, 0.10, 0.0)
    assert right.shape == g.shape and np.array_equal(right[:, 8:], g[:, :-8]) and np.all(right[:, :8] == g[:, :1])
    up = shift(g, 0.0, -0.10)
    assert np.array_equal(up[:-10], g[10:]) and np.all(up[-10:] == g[-1:])
    assert aspect(g, 0.8).shape == (100, 64) and aspect(g, 1.25).shape == (80, 80)
    assert bands(g + 1, "tb", 0.1)[:10].max() == 0 and bands(g + 1, "tb", 0.1)[10:90].min() > 0
    assert black_corner(g + 1, 0.22)[:22, :18].max() == 0 and black_corner(g + 1, 0.22)[22:].min() > 0


def test_clean_inputs_equal_the_device_preprocessing_of_the_file(films):
    paths, originals = films
    clean = model_inputs(originals, "clean", SPEC)
    for path, image in zip(paths, clean):
        assert np.array_equal(image, prepare_file(path, SPEC).pixels)


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_gives_valid_changed_model_inputs(films, name):
    _, originals = films
    clean = model_inputs(originals, "clean", SPEC)
    changed = model_inputs(originals, name, SPEC)
    assert changed.shape == clean.shape and changed.dtype == np.uint8
    assert not np.array_equal(changed, clean)


def test_markers_land_in_their_corner(films):
    _, originals = films
    clean = model_inputs(originals, "clean", SPEC).astype(int)
    marked = model_inputs(originals, "letter_R_tl_15", SPEC).astype(int)
    diff = np.abs(marked - clean)
    assert diff[:, :20, :20].max() > 100  # a white letter in the top-left corner
    # elsewhere only the device's percentile stretch, which now sees the letter, moves pixels
    assert diff[:, 32:, 32:].max() < diff[:, :20, :20].max() / 2


def test_report_counts_flips_and_logit_changes():
    labels = np.array([0, 0, 1, 1])
    clean = np.array([-2.0, -1.0, 1.0, 2.0])
    logits = {"clean": clean}
    for name in PERTURBATIONS:
        logits[name] = clean.copy()
    logits["crop_10"] = np.array([1.5, -1.0, 1.0, 2.0])  # one healthy film crosses the threshold
    report = shift_report(labels, logits, threshold=0.5)
    crop10 = report["crop_10"]
    assert crop10["flip_rate"] == 0.25 and crop10["specificity"] == 0.5
    assert crop10["mean_abs_delta_logit"] == pytest.approx(3.5 / 4)
    assert crop10["normal_mean_delta_logit"] == pytest.approx(1.75)
    assert report["pad_edge_10"]["flip_rate"] == 0.0
    s = report["summary"]
    assert s["min_specificity"] == 0.5 and s["worst_specificity_perturbation"] == "crop_10"
    assert s["pooled_auc"] < 1.0  # the re-framed healthy film outranks a sick one
    assert s["max_flip_rate"] == 0.25 and s["mean_flip_rate"] == pytest.approx(0.25 / len(PERTURBATIONS))


def test_films_keep_their_full_scale():
    film = Film(np.full((100, 100), 4000.0, np.float32), 4095.0)
    out = model_inputs([film], "letter_L_tr_8", SPEC)
    assert out.shape == (1, 64, 64)


def test_a_tiny_film_cropped_below_the_smallest_side_is_still_scored():
    film = Film(synthetic_film(70, seed=3).astype(np.float32), 255.0)
    out = model_inputs([film], "crop_10", SPEC)  # 70 px - 2 x 7 = 56 px < the device's minimum
    assert out.shape == (1, 64, 64) and out.std() > 0
