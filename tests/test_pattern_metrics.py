"""Bacterial-vs-viral figures: known answers, films without a pattern left out, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from train.labels import resolve_scheme
from train.pattern_metrics import pattern_metrics

KERMANY = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)


def probs(p_viral):
    p = np.asarray(p_viral, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_known_answers_with_viral_as_the_positive_pattern():
    patterns = np.array([-1, 0, 0, 0, 1, 1])
    p = probs([0.99, 0.1, 0.2, 0.7, 0.8, 0.3])  # the first film has no pattern: never counted
    m = pattern_metrics(patterns, p, KERMANY)
    assert m["counts"] == {"bacterial": 3, "viral": 2} and m["n"] == 5
    assert m["sensitivity"] == pytest.approx(1 / 2)  # viral called viral
    assert m["specificity"] == pytest.approx(2 / 3)  # bacterial called bacterial
    assert m["auc"] == pytest.approx(5 / 6)  # 0.8 beats all three bacterial films, 0.3 two of them
    assert set(m["ci95"]) == {"accuracy", "sensitivity", "specificity", "auc"}


def test_one_pattern_absent_gives_no_auc():
    m = pattern_metrics(np.array([0, 0]), probs([0.2, 0.3]), KERMANY)
    assert "auc" not in m and "absent" in m["note"]


def test_three_patterns_report_accuracy_and_one_vs_rest_auc():
    scheme = resolve_scheme(["normal", "a", "b", "c"])
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    m = pattern_metrics(np.array([0, 1, 2, 2]), p, scheme)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["auc_one_vs_rest"]["a"] == pytest.approx(1.0)
