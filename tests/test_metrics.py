"""The clinicians' metrics and the threshold rule, checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import binary_metrics, bootstrap_ci, choose_threshold, roc_auc, roc_curve


def test_auc_matches_pairwise_definition_with_ties():
    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.7, 0.2])
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(labels, scores) == pytest.approx(pairwise)
    assert roc_auc(labels, -scores) == pytest.approx(1 - pairwise)


def test_binary_metrics_on_a_known_confusion_matrix():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1])
    m = binary_metrics(labels, scores, 0.5)
    assert m["confusion"] == {"tp": 3, "fn": 1, "fp": 1, "tn": 5}
    assert m["sensitivity"] == pytest.approx(0.75)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["precision"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.8)


def test_threshold_rule_keeps_sensitivity_and_maximises_specificity():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(300), np.zeros(100)].astype(int)
    scores = np.r_[rng.normal(2, 1, 300), rng.normal(0, 1, 100)]
    t, how = choose_threshold(labels, scores, "sensitivity", 0.97)
    assert "0.97" in how
    m = binary_metrics(labels, scores, t)
    assert m["sensitivity"] >= 0.97
    # nudging the threshold up to the next positive score would break the sensitivity target
    higher = np.sort(scores[scores > t])[0] + 1e-9
    assert binary_metrics(labels, scores, higher)["sensitivity"] < 0.97 or m["specificity"] == 1.0


def test_youden_and_fixed_rules():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    t, _ = choose_threshold(labels, scores, "youden")
    assert 0.4 < t <= 0.6
    assert choose_threshold(labels, scores, "fixed", 0.3)[0] == 0.3
    with pytest.raises(ValueError):
        choose_threshold(labels, scores, "magic")


def test_roc_curve_runs_from_origin_to_corner():
    labels = np.array([0, 1, 0, 1])
    fpr, tpr, _ = roc_curve(labels, np.array([0.2, 0.8, 0.4, 0.6]))
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)


def test_bootstrap_interval_contains_the_point_estimate():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = labels + rng.normal(0, 0.8, 200)
    ci = bootstrap_ci(labels, scores, 0.5, n=200)
    point = binary_metrics(labels, scores, 0.5)
    for key in ("auc", "accuracy", "sensitivity", "specificity"):
        assert ci[key][0] <= point[key] <= ci[key][1]


def test_shift_robust_threshold_holds_the_target_on_every_set():
    from train.metrics import shift_robust_threshold

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(50), np.ones(50)].astype(int)
    clean = np.r_[rng.uniform(0.0, 0.5, 50), rng.uniform(0.4, 1.0, 50)]
    lower = clean - 0.1 * labels  # a shift that lowers the pneumonia scores
    threshold, how = shift_robust_threshold(labels, {"clean": clean, "crop": lower}, 0.95)
    for scores in (clean, lower):
        assert binary_metrics(labels, scores, threshold)["sensitivity"] >= 0.95
    clean_only, _ = choose_threshold(labels, clean, "sensitivity", 0.95)
    assert threshold < clean_only and "binding: crop" in how
    alone, _ = shift_robust_threshold(labels, {"clean": clean}, 0.95)
    assert alone == clean_only
