"""``edge_app.intervals``: Wilson, DeLong and binomial ranges, checked against scipy where it is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_app.intervals import auc_interval, binomial_range, roc_auc, wilson_interval


def test_wilson_matches_the_textbook_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-4) and high == pytest.approx(0.3662, abs=5e-4)


@pytest.mark.parametrize("k,n", [(0, 20), (20, 20), (1, 1), (3, 7)])
def test_wilson_stays_inside_zero_one_and_never_collapses(k, n):
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert high - low > 0.05  # 0/20 or 20/20 is not certainty
    assert (k == 0) == (low == 0.0) and (k == n) == (high == 1.0)


def test_wilson_without_films_is_undefined_and_bad_counts_raise():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_auc_counts_ties_half_and_is_nan_for_one_class():
    assert roc_auc([0, 1], [0.2, 0.8]) == 1.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == 0.75
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_delong_interval_covers_the_auc_and_matches_the_bootstrap():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(150, int), np.ones(250, int)]
    scores = np.r_[rng.normal(0, 1, 150), rng.normal(1.5, 1, 250)]
    auc, low, high = auc_interval(labels, scores)
    assert auc == pytest.approx(roc_auc(labels, scores))
    assert low < auc < high
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(labels), len(labels))
        boot.append(roc_auc(labels[i], scores[i]))
    # DeLong's standard error agrees with the bootstrap's to within 15%
    assert (high - low) / (2 * 1.96) == pytest.approx(np.std(boot), rel=0.15)


def test_delong_interval_with_a_single_film_of_a_class_is_uninformative():
    auc, low, high = auc_interval([0, 1, 1], [0.1, 0.5, 0.9])
    assert auc == 1.0 and (low, high) == (0.0, 1.0)


def test_binomial_range_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for n, p in ((10, 0.3), (57, 0.31), (400, 0.05), (3, 0.9)):
        low, high = binomial_range(n, p, p)
        assert low == int(stats.binom.ppf(0.025, n, p))
        assert high == int(stats.binom.ppf(0.975, n, p))


def test_binomial_range_widens_with_the_rate_interval_and_handles_the_edges():
    narrow = binomial_range(100, 0.3, 0.3)
    wide = binomial_range(100, 0.25, 0.35)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    assert binomial_range(50, 0.0, 0.0) == (0, 0)
    assert binomial_range(50, 1.0, 1.0) == (50, 50)
    assert binomial_range(0, 0.3, 0.3) == (0, 0)
