"""The film inside its padding (edge_app/padding.py): what the gate measures instead of the square."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import anatomical_film, prepared
from edge_app.padding import MAX_TRIM, content_box


def test_a_film_without_padding_is_returned_as_it_is():
    plain = prepared(anatomical_film()).pixels
    assert content_box(plain) is plain  # nothing to trim: the very same pixels


@pytest.mark.parametrize("pad", [
    lambda g: np.pad(g, 25),  # black
    lambda g: np.pad(g, 60, mode="edge"),
    lambda g: np.pad(g, ((40, 0), (0, 20)), constant_values=255),  # white, two sides only
])
def test_black_edge_and_white_padding_are_trimmed_to_the_square_film(pad):
    padded = prepared(pad(anatomical_film())).pixels
    inner = content_box(padded)
    assert inner.shape[0] < padded.shape[0] or inner.shape[1] < padded.shape[1]
    assert abs(inner.shape[0] / inner.shape[1] - 1) < 0.1  # the square film, not a slice of it


def test_a_uniform_image_loses_at_most_max_trim_of_each_side():
    flat = np.full((64, 64), 128, np.uint8)
    inner = content_box(flat)
    assert inner.shape == (64 - 2 * int(MAX_TRIM * 64),) * 2
