"""``edge_app.thresholds``: the sensitivity rule and the uncertain band that export and calibrate share."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.thresholds import threshold_for_sensitivity, uncertain_band


def _brute_force(labels, scores, target):
    """The rule as written, over every midpoint between observed scores: keep the target, then
    the highest specificity, then the highest sensitivity."""
    values = np.unique(scores)
    candidates = np.r_[values[0] / 2, (values[1:] + values[:-1]) / 2]
    best = None
    for t in candidates:
        sens, spec = (scores[labels] >= t).mean(), (scores[~labels] < t).mean()
        if sens >= target and (best is None or (spec, sens) > best[:2]):
            best = (spec, sens, t)
    return best[2]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.97, 0.99])
def test_rule_agrees_with_a_brute_force_search(seed, target):
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.6
    scores = np.round(np.where(labels, rng.beta(5, 2, 300), rng.beta(2, 5, 300)), 3)  # with ties
    assert threshold_for_sensitivity(labels, scores, target) == pytest.approx(_brute_force(labels, scores, target))


def test_separated_classes_get_the_bottom_of_the_gap():
    labels = np.r_[np.zeros(50, bool), np.ones(50, bool)]
    scores = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.6, 1.0, 50)]
    t = threshold_for_sensitivity(labels, scores, 0.95)
    assert t == pytest.approx(0.45)  # specificity 1 and sensitivity 1, not 0.95


def test_rule_keeps_the_target_and_sits_between_two_films():
    # 21 pneumonias with 5 normals among the lowest: one pneumonia may be missed, and missing the
    # lowest one clears the three normals below the second
    labels = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1] + [1] * 14).astype(bool)
    scores = np.linspace(0.01, 0.99, len(labels))
    t = threshold_for_sensitivity(labels, scores, 0.95)
    assert (scores[labels] >= t).sum() == 20
    assert (scores[~labels] >= t).sum() == 2
    assert scores[3] < t < scores[4]
    assert not np.any(np.isclose(scores, t))


def test_rule_needs_a_positive_and_a_sane_target():
    with pytest.raises(ValueError, match="no positive"):
        threshold_for_sensitivity([0, 0], [0.1, 0.2], 0.95)
    with pytest.raises(ValueError, match="target"):
        threshold_for_sensitivity([0, 1], [0.1, 0.2], 1.5)


def test_band_follows_its_rule_and_contains_the_threshold():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(400, bool), np.ones(400, bool)]
    scores = np.r_[rng.beta(2, 5, 400), rng.beta(5, 2, 400)]
    (low, high), rule = uncertain_band(labels, scores, 0.4)
    assert low <= 0.4 <= high
    assert (scores[labels] < low).mean() <= 0.01 and (scores[~labels] >= high).mean() <= 0.05
    assert "widened to contain the threshold" in rule
    assert uncertain_band(np.ones(4, bool), np.linspace(0, 1, 4), 0.5)[0] is None


def test_confident_rule_holds_the_interval_to_the_target_and_no_further():
    from edge_app.intervals import wilson_interval
    from edge_app.thresholds import threshold_for_confident_sensitivity

    rng = np.random.default_rng(4)
    labels = np.r_[np.zeros(300, bool), np.ones(500, bool)]
    scores = np.r_[rng.beta(2, 5, 300), rng.beta(6, 2, 500)]
    t, met = threshold_for_confident_sensitivity(labels, scores, 0.95)
    hits = int((scores[labels] >= t).sum())
    assert met and wilson_interval(hits, 500)[0] >= 0.95
    # clearing one more normal film (the lowest one still referred) costs the interval the target
    stricter = np.nextafter(scores[~labels & (scores >= t)].min(), 1)
    assert wilson_interval(int((scores[labels] >= stricter).sum()), 500)[0] < 0.95
    assert t <= threshold_for_sensitivity(labels, scores, 0.95)  # never less safe than the plain rule


def test_confident_rule_on_too_few_films_refers_every_positive_and_says_so():
    from edge_app.thresholds import threshold_for_confident_sensitivity

    labels = np.r_[np.zeros(10, bool), np.ones(30, bool)]
    scores = np.r_[np.linspace(0.0, 0.5, 10), np.linspace(0.3, 1.0, 30)]
    t, met = threshold_for_confident_sensitivity(labels, scores, 0.95)  # 30/30 gives 0.886..1
    assert not met and (scores[labels] >= t).all()
