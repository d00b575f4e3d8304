"""``edge_app.operating_point``: the threshold a result was decided with, and where it came from."""

from __future__ import annotations

import pytest

from edge_app.operating_point import OperatingPoint


def test_band_is_inclusive_and_optional():
    point = OperatingPoint(0.5, (0.4, 0.6), "site", "abc")
    assert point.uncertain(0.4) and point.uncertain(0.6) and not point.uncertain(0.61)
    assert not OperatingPoint(0.5, None).uncertain(0.5)


def test_invalid_points_are_refused():
    with pytest.raises(ValueError, match="source"):
        OperatingPoint(0.5, None, "guess")
    with pytest.raises(ValueError, match="inside"):
        OperatingPoint(1.0, None)
    with pytest.raises(ValueError, match="does not contain"):
        OperatingPoint(0.5, (0.6, 0.7), "site")


def test_an_explicit_threshold_is_labelled_as_such_and_keeps_the_band():
    point = OperatingPoint(0.5, (0.4, 0.6), "site", "abc").with_threshold(0.9)
    assert (point.threshold, point.source, point.profile, point.band) == (0.9, "option", None, (0.4, 0.6))
