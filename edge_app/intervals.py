"""95% intervals for the figures a site calibration reports, in plain numpy (no scipy on the device).

- Proportions (sensitivity, specificity, PPV, NPV, share referred): Wilson score interval. Unlike
  the textbook ``p +- 1.96 sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not collapse to a
  single point at 0/n or n/n, which is exactly where a screening tool's sensitivity lives.
- AUC: DeLong's variance of the Mann-Whitney estimate (DeLong, DeLong & Clarke-Pearson 1988),
  computed from mid-ranks, as a normal interval clipped to [0, 1].
- The range of a binomial count (how many films a day may refer before it looks unusual):
  exact binomial quantiles.
"""

from __future__ import annotations

import math

import numpy as np

#: Two-sided 95%: the standard normal's 97.5th percentile.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(nan, nan)`` when ``n == 0``."""
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0/n and n/n the formula's edge is exactly 0 or 1 but rounds a hair off it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: the probability that a random pneumonia film scores above a
    random normal one, ties counting half (Mann-Whitney U). ``nan`` without both classes."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    m, n = int(labels.sum()), int((~labels).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = _midranks(scores)
    return float((ranks[labels].sum() - m * (m + 1) / 2.0) / (m * n))


def auc_interval(labels, scores, z: float = Z95) -> tuple[float, float, float]:
    """``(auc, low, high)``: the AUC and its DeLong 95% interval; all ``nan`` without both classes.

    DeLong's structural components: for each positive, the share of negatives it outscores; for
    each negative, the share of positives that outscore it. Their variances, divided by the class
    sizes, add up to the variance of the AUC. With one film of a class the variance of that side is
    undefined and the interval is ``(0, 1)``: one film says nothing about the spread.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return float("nan"), float("nan"), float("nan")
    all_ranks = _midranks(np.r_[pos, neg])
    pos_ranks, neg_ranks = all_ranks[:m], all_ranks[m:]
    v10 = (pos_ranks - _midranks(pos)) / n  # per positive: share of negatives below it
    v01 = 1.0 - (neg_ranks - _midranks(neg)) / m  # per negative: share of positives above it
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return auc, 0.0, 1.0
    se = math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def _binomial_cdf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    """P(X <= k) for X ~ Binomial(n, p), from log-probabilities (stable for n in the thousands)."""
    ks = np.arange(n + 1)
    if p <= 0.0:
        pmf = (ks == 0).astype(np.float64)
    elif p >= 1.0:
        pmf = (ks == n).astype(np.float64)
    else:
        log_pmf = np.array(
            [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in ks]
        ) + ks * math.log(p) + (n - ks) * math.log1p(-p)
        pmf = np.exp(log_pmf)
    return np.cumsum(pmf)[k]


def binomial_range(n: int, p_low: float, p_high: float, tail: float = 0.025) -> tuple[int, int]:
    """Counts out of ``n`` that are unsurprising when the true rate lies in ``[p_low, p_high]``.

    The lower end is the ``tail`` quantile of Binomial(n, p_low), the upper end the ``1 - tail``
    quantile of Binomial(n, p_high): a count outside ``[low, high]`` has less than a ``tail``
    chance under every rate in the range. Passing the calibration's own interval for the rate
    makes room for the calibration sample being finite too.
    """
    if n <= 0:
        return 0, 0
    ks = np.arange(n + 1)
    cdf_low = _binomial_cdf(ks, n, p_low)
    cdf_high = _binomial_cdf(ks, n, p_high)
    low = int(np.searchsorted(cdf_low, tail, side="left"))  # smallest k with P(X <= k) >= tail
    high = int(np.searchsorted(cdf_high, 1.0 - tail, side="left"))
    return min(low, n), min(high, n)
