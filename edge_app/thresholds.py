"""Where the decision threshold and the uncertain band sit, chosen from labelled scores.

Plain numpy, one definition used by export (on the training hospital's validation films) and by
``pneumoscan calibrate`` (on a site's own films), so a site's threshold and band follow exactly
the rule the shipped ones did. Positive = PNEUMONIA: a film is referred when its probability is
``>=`` the threshold. Training may import this too; it never imports training.
"""

from __future__ import annotations

import math

import numpy as np

#: Uncertain band: below its lower edge at most this share of the labelled pneumonia cases score...
BAND_MAX_MISSED = 0.01
#: ...and at or above its upper edge at most this share of the labelled normal children score.
BAND_MAX_FALSE_ALARM = 0.05


def _as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be equal-length vectors")
    return labels, scores


def threshold_for_sensitivity(labels, scores, target: float) -> float:
    """The threshold with the highest specificity whose sensitivity is still ``>= target``; among
    thresholds with that specificity, the one with the highest sensitivity.

    The second clause matters where the classes separate: any threshold in the gap between the
    highest normal score and the pneumonia scores has the same specificity, and the one at the
    bottom of the gap misses no pneumonia, where "highest threshold that keeps the target" would
    give up 5% of them for nothing. The value returned sits halfway between two observed scores,
    so it does not ride on a single film and a film scored a hair differently on another runtime
    falls on the same side. Raises ``ValueError`` without a positive film.
    """
    labels, scores = _as_arrays(labels, scores)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"sensitivity target {target} is not in (0, 1]")
    n = int(labels.sum())
    # Sensitivity at threshold t is the share of positives >= t; it keeps >= target while at most
    # floor((1 - target) * n) positives lie below t (a small epsilon absorbs 0.95 * 20 = 18.999..).
    return threshold_allowing_misses(labels, scores, int(math.floor((1.0 - target) * n + 1e-9)))


def threshold_for_confident_sensitivity(labels, scores, target: float) -> tuple[float, bool]:
    """Like :func:`threshold_for_sensitivity`, but the whole 95% Wilson interval of the
    sensitivity must stay ``>= target``, not just the observed value; returns (threshold, met).

    On a few hundred films the observed sensitivity at the plain rule's threshold is the target
    itself, and the truth may well be below it; this rule gives up some specificity so that the
    films at hand support the target. ``met`` is False when even missing no pneumonia film
    cannot make the interval clear the target (too few films): the threshold then refers them all.
    """
    from edge_app.intervals import wilson_interval

    labels, scores = _as_arrays(labels, scores)
    n = int(labels.sum())
    if not n:
        raise ValueError("no positive (pneumonia) film: sensitivity is undefined")
    misses = -1
    while misses + 1 < n and wilson_interval(n - (misses + 1), n)[0] >= target:
        misses += 1
    return threshold_allowing_misses(labels, scores, max(misses, 0)), misses >= 0


def threshold_allowing_misses(labels, scores, misses: int) -> float:
    """The highest-specificity threshold that leaves at most ``misses`` positives below it, and
    among those the one with the highest sensitivity (see :func:`threshold_for_sensitivity`)."""
    labels, scores = _as_arrays(labels, scores)
    positives = np.sort(scores[labels])
    if not len(positives):
        raise ValueError("no positive (pneumonia) film: sensitivity is undefined")
    highest = positives[min(max(misses, 0), len(positives) - 1)]  # the highest threshold allowed
    # Specificity stays the same for every threshold above the highest normal score below it.
    negatives_below = scores[~labels & (scores < highest)]
    if not len(negatives_below):
        return float(scores.min() / 2.0)  # no specificity to keep: refer everyone
    floor_score = float(negatives_below.max())
    next_up = float(scores[scores > floor_score].min())
    return (floor_score + next_up) / 2.0


def uncertain_band(
    labels,
    scores,
    threshold: float,
    max_missed: float = BAND_MAX_MISSED,
    max_false_alarm: float = BAND_MAX_FALSE_ALARM,
) -> tuple[list[float] | None, str]:
    """The probability interval reported as "uncertain", chosen on labelled films; returns (band, rule).

    Outside the band the call is one the model almost never got wrong on those films *in that
    direction*: below the lower edge lie at most 1% of the pneumonia cases (the costly error, a
    missed pneumonia, is rare there), at or above the upper edge at most 5% of the normal
    children. In between, both classes still occur often enough that a clinician should look. The
    band is widened to contain the threshold if needed (a weak or very strong model can put an
    edge on the other side of it). ``None`` when the films lack one of the classes.
    """
    labels, scores = _as_arrays(labels, scores)
    positives, negatives = np.sort(scores[labels]), np.sort(scores[~labels])[::-1]
    rule = (
        f"lower edge keeps >= {1 - max_missed:.0%} of pneumonia cases at or above it, upper edge "
        f"has <= {max_false_alarm:.0%} of normal cases at or above it; widened to contain the threshold"
    )
    if not len(positives) or not len(negatives):
        return None, "no band: the labelled films lack one of the classes"
    # At most floor(max_missed * n) positives may score below the lower edge.
    low = float(positives[int(math.floor(max_missed * len(positives)))])
    # At most floor(max_false_alarm * n) negatives may score at or above the upper edge: put it
    # just above the next-highest negative.
    allowed = int(math.floor(max_false_alarm * len(negatives)))
    high = float(np.nextafter(negatives[allowed], np.inf)) if allowed < len(negatives) else 0.0
    low, high = min(low, threshold), max(high, threshold)
    return [low, min(high, 1.0)], rule
