"""``edge_app.calibration``: the table, the recommendation rule, the band and the warnings, from scores."""

from __future__ import annotations

import numpy as np
import pytest

from edge_app.calibration import MIN_FILMS_PER_CLASS, calibrate, format_table, operating_row
from edge_app.intervals import wilson_interval
from edge_app.thresholds import uncertain_band


def _scores(n_normal: int, n_sick: int, shift: float = 0.0, seed: int = 0):
    """Normal films ~ Beta(2, 6), pneumonia ~ Beta(6, 2), normals moved up by ``shift``."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_normal, bool), np.ones(n_sick, bool)]
    scores = np.r_[np.clip(rng.beta(2, 6, n_normal) + shift, 0, 1), rng.beta(6, 2, n_sick)]
    return labels, scores


def test_recommendation_is_the_highest_specificity_that_keeps_the_target():
    labels, scores = _scores(300, 300)
    cal = calibrate(labels, scores, model_threshold=0.3, target=0.95)
    rec = cal.recommended
    assert rec.threshold == cal.threshold
    assert rec.sensitivity.value >= 0.95
    # every table row with a higher threshold (hence higher specificity) misses the target
    for row in cal.table:
        if row.threshold > rec.threshold:
            assert row.sensitivity.value < 0.95 and row.specificity.value >= rec.specificity.value
    # one film further and the target is lost
    above = np.sort(scores[scores > cal.threshold])[0]
    assert operating_row(labels, scores, np.nextafter(above, 1)).sensitivity.value < 0.95


def test_table_rows_carry_counts_and_wilson_intervals_that_add_up():
    labels, scores = _scores(120, 200)
    cal = calibrate(labels, scores, model_threshold=0.5, target=0.95)
    assert cal.counts == {"NORMAL": 120, "PNEUMONIA": 200}
    assert [r.threshold for r in cal.table] == sorted(r.threshold for r in cal.table)
    assert {"recommended", "model"} <= {w for r in cal.table for w in r.why}
    for row in cal.table:
        assert row.tp + row.fn == 200 and row.tn + row.fp == 120
        assert row.sensitivity.interval == wilson_interval(row.tp, 200)
        assert row.referred.k == int((scores >= row.threshold).sum())
        d = row.to_dict()
        assert d["ppv"]["low"] <= d["ppv"]["value"] <= d["ppv"]["high"]
    auc, low, high = cal.auc
    assert 0.9 < auc and low < auc < high


def test_band_is_the_export_rule_around_the_site_threshold():
    labels, scores = _scores(200, 200)
    cal = calibrate(labels, scores, model_threshold=0.5)
    band, rule = uncertain_band(labels, scores, cal.threshold)
    assert cal.band == tuple(band) and cal.band_rule == rule
    assert cal.band[0] <= cal.threshold <= cal.band[1]
    inside = ((scores >= band[0]) & (scores <= band[1])).sum()
    assert cal.uncertain.k == inside and cal.uncertain.n == len(scores)


def test_threshold_rises_when_healthy_scores_rise():
    labels, scores = _scores(300, 300)
    shifted_labels, shifted = _scores(300, 300, shift=0.25)
    base = calibrate(labels, scores, model_threshold=0.3)
    moved = calibrate(shifted_labels, shifted, model_threshold=0.3)
    # normals scoring higher push the rule's threshold up only if pneumonias allow it; what must
    # hold: at the model's threshold specificity falls, and the site threshold wins it back
    assert moved.at_model_threshold.specificity.value < base.at_model_threshold.specificity.value
    assert moved.recommended.specificity.value >= moved.at_model_threshold.specificity.value


def test_small_or_borderline_sets_are_said_to_be_so():
    labels, scores = _scores(30, 40)
    cal = calibrate(labels, scores, model_threshold=0.5)
    text = " | ".join(cal.warnings)
    assert "only 30 NORMAL films" in text and "only 40 PNEUMONIA films" in text
    assert f"at least {MIN_FILMS_PER_CLASS}" in text
    assert "below the 0.95 target" in text  # 40 films cannot show sensitivity >= 0.95 with confidence


def test_a_large_clearly_separated_set_has_no_warnings():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(400, bool), np.ones(600, bool)]
    scores = np.r_[rng.uniform(0.0, 0.3, 400), rng.uniform(0.5, 1.0, 600)]
    cal = calibrate(labels, scores, model_threshold=0.5, target=0.95)
    assert cal.recommended.sensitivity.interval[0] >= 0.95
    assert cal.warnings == ()


def test_refuses_one_class_and_odd_targets():
    with pytest.raises(ValueError, match="both classes"):
        calibrate([1, 1, 1], [0.2, 0.5, 0.9], model_threshold=0.5)
    with pytest.raises(ValueError, match="target"):
        calibrate([0, 1], [0.2, 0.9], model_threshold=0.5, target=1.0)


def test_format_table_shows_every_row_and_the_auc():
    labels, scores = _scores(80, 120)
    cal = calibrate(labels, scores, model_threshold=0.5)
    text = format_table(cal)
    assert text.count("\n") == len(cal.table) + 3
    assert "recommended" in text and "model" in text and "AUC" in text and "DeLong" in text


def test_confident_recommendation_trades_specificity_for_a_sensitivity_interval_above_target():
    labels, scores = _scores(150, 300, seed=5)
    plain = calibrate(labels, scores, model_threshold=0.5)
    sure = calibrate(labels, scores, model_threshold=0.5, confident=True)
    assert sure.threshold <= plain.threshold and "interval stays >= 0.95" in sure.rule
    assert sure.recommended.sensitivity.interval[0] >= 0.95 > plain.recommended.sensitivity.interval[0]
    assert sure.recommended.specificity.value <= plain.recommended.specificity.value
    # the plain calibration shows the confident threshold as a row, and its warning points to it
    assert any("confident" in row.why for row in plain.table)
    assert any("--confident" in w for w in plain.warnings)
    assert not any("below the 0.95 target" in w for w in sure.warnings)


def test_separated_classes_say_the_auc_interval_is_degenerate_instead_of_printing_one():
    labels = np.r_[np.zeros(60, bool), np.ones(60, bool)]
    scores = np.r_[np.linspace(0.0, 0.3, 60), np.linspace(0.6, 1.0, 60)]
    text = format_table(calibrate(labels, scores, model_threshold=0.5))
    assert "the classes do not overlap here" in text and "1.000-1.000" not in text

