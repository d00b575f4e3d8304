"""The input gate's orientation checks: films turned by 90 or 180 degrees are refused, films
without orientation cues are not, and a wrong EXIF tag is caught (edge_app/orientation.py).
How a mirrored film is decided, with the model's score, is in test_gate.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import prepared, synthetic_film


def test_read_box_says_turned_or_mirrored_from_one_view():
    from conftest import anatomical_film
    from edge_app.orientation import orientation_refusal, read_box
    from edge_app.padding import content_box

    upright = prepared(anatomical_film()).pixels
    assert read_box(content_box(upright)) == (None, False)
    turned = prepared(np.rot90(anatomical_film(), 2)).pixels
    assert read_box(content_box(turned))[0] == orientation_refusal(turned)
    mirrored = prepared(anatomical_film()[:, ::-1]).pixels
    assert read_box(content_box(mirrored)) == (None, True)


@pytest.mark.parametrize(
    "turn, reason",
    [
        (lambda g: np.rot90(g), "rotated by 90 degrees"),
        (lambda g: np.rot90(g, 3), "rotated by 90 degrees"),
        (lambda g: np.rot90(g, 2), "upside down"),
    ],
)
def test_turned_films_are_refused(turn, reason):
    from conftest import anatomical_film
    from edge_app.orientation import orientation_refusal

    for seed in range(3):
        upright = prepared(anatomical_film(seed=seed))
        assert orientation_refusal(upright.pixels, upright.shape) is None
        turned = prepared(np.ascontiguousarray(turn(anatomical_film(seed=seed))))
        assert orientation_refusal(turned.pixels, turned.shape).startswith(reason)


def test_the_half_turn_discriminant_scores_a_turned_view_as_the_upright_one_negated():
    """What scripts/fit_orientation_template.py relies on: a film turned by 180 degrees has the
    upright film's half-turn part negated, so one threshold below every upright film separates them."""
    from conftest import anatomical_film
    from edge_app.orientation import orientation_scores, orientation_view, upside_down_part

    view = orientation_view(prepared(anatomical_film()).pixels)
    assert np.allclose(upside_down_part(np.rot90(view, 2)), -upside_down_part(view))
    upright = orientation_scores(prepared(anatomical_film()).pixels)["upside_down_fisher"]
    turned = orientation_scores(prepared(np.rot90(anatomical_film(), 2)).pixels)["upside_down_fisher"]
    assert upright > 0 > turned


def test_the_orientation_file_carries_every_discriminant_with_its_rule():
    import json

    from edge_app.orientation import ORIENTATION_FILE, ORIENTATION_SIDE

    stored = json.loads(ORIENTATION_FILE.read_text())
    for name in ("mirror", "upside_down"):
        assert len(stored[name]["axis"]) == ORIENTATION_SIDE * ORIENTATION_SIDE // 2
        assert abs(np.linalg.norm(stored[name]["axis"]) - 1) < 1e-3
        assert stored[name]["refuse_below"] < 0 and stored[name]["threshold_rule"]


def test_films_without_orientation_cues_are_not_refused_for_orientation():
    from edge_app.orientation import orientation_refusal

    for seed in range(20):  # left-right and nearly top-bottom symmetric: no cue either way
        film = prepared(synthetic_film(96, seed=seed))
        assert orientation_refusal(film.pixels, film.shape) is None


def test_wrong_exif_orientation_is_refused(tmp_path):
    from conftest import anatomical_film
    from edge_app.decoding import decode_file
    from edge_app.orientation import orientation_refusal
    from edge_app.preprocessing import PreprocessSpec

    exif = Image.Exif()
    exif[0x0112] = 3  # "rotate 180 to display": wrong for a film stored upright
    Image.fromarray(anatomical_film()).save(tmp_path / "wrong.jpeg", quality=95, exif=exif.tobytes())
    Image.fromarray(anatomical_film()).save(tmp_path / "right.jpeg", quality=95)
    wrong, right = (decode_file(tmp_path / name, PreprocessSpec(64)) for name in ("wrong.jpeg", "right.jpeg"))
    assert orientation_refusal(wrong.pixels, wrong.shape).startswith("upside down")
    assert orientation_refusal(right.pixels, right.shape) is None
