"""The pattern head's training targets and loss: weighted screening, pattern masked for negatives."""

from __future__ import annotations

import numpy as np
import pytest

from train.heads import pattern_probabilities, training_targets
from train.labels import BINARY_KERMANY, resolve_scheme

KERMANY = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)


def test_binary_targets_are_the_labels_themselves():
    labels = np.array([0, 1, 1])
    assert training_targets(labels, np.array([-1, -1, -1]), BINARY_KERMANY) is labels


def test_pattern_targets_mask_negatives_and_balance_both_levels():
    labels = np.array([0, 0, 1, 1, 1, 1])
    patterns = np.array([-1, -1, 0, 0, 0, 1])
    t = training_targets(labels, patterns, KERMANY)
    assert t.shape == (6, 4)
    assert np.all(t[:2, 3] == 0)  # no pattern weight for a negative film
    # each screening class and each pattern contributes equally in total
    assert t[labels == 0, 1].sum() == pytest.approx(t[labels == 1, 1].sum())
    assert t[patterns == 0, 3].sum() == pytest.approx(t[patterns == 1, 3].sum())
    assert np.all(t[:, 2] >= 0)  # a masked film's pattern label is a harmless 0, never -1
    unweighted = training_targets(labels, patterns, KERMANY, weighted=False)
    assert np.all(unweighted[:, 1] == 1) and list(unweighted[:, 3]) == [0, 0, 1, 1, 1, 1]


def test_loss_ignores_the_pattern_output_of_a_negative_film():
    import keras  # noqa: F401 - TensorFlow backend

    from train.heads import HeadsLoss

    loss = HeadsLoss(pattern_units=1)
    target = training_targets(np.array([0, 1]), np.array([-1, 1]), KERMANY, weighted=False)
    base = np.array([[0.2, 0.5], [0.8, 0.5]], np.float32)

    def value(pred):
        return float(loss(target, pred))

    moved_negative = base.copy()
    moved_negative[0, 1] = 0.99
    assert value(moved_negative) == pytest.approx(value(base))
    better_positive = base.copy()
    better_positive[1, 1] = 0.95  # the viral film now looks more viral
    assert value(better_positive) < value(base)


def test_consistency_compares_the_two_views_of_each_film_on_both_heads_masking_normal_patterns():
    import keras  # noqa: F401 - TensorFlow backend

    from train.heads import HeadsLoss

    # A paired batch: [view 1 of a normal and a viral film; view 2 of the same two films].
    target = training_targets(np.array([0, 1, 0, 1]), np.array([-1, 1, -1, 1]), KERMANY, weighted=False)
    same = np.array([[0.2, 0.5], [0.8, 0.6], [0.2, 0.5], [0.8, 0.6]], np.float32)
    plain, paired = HeadsLoss(pattern_units=1), HeadsLoss(pattern_units=1, consistency=1.0)
    assert float(paired(target, same)) == pytest.approx(float(plain(target, same)))  # identical views: no gap

    def gap_added(pred):
        return float(paired(target, pred)) - float(plain(target, pred))

    normal_pattern_moved = same.copy()
    normal_pattern_moved[2, 1] = 0.99  # a normal film's pattern output is never taught
    assert gap_added(normal_pattern_moved) == pytest.approx(0.0, abs=1e-6)
    screening_moved = same.copy()
    screening_moved[3, 0] = 0.5  # the viral film's second view: logit 0 instead of logit(0.8)
    pattern_moved = same.copy()
    pattern_moved[3, 1] = 0.5
    logit_gap = np.log(0.8 / 0.2) ** 2
    # mean over the batch of a gap given to both views of the film
    assert gap_added(screening_moved) == pytest.approx(2 * logit_gap / 4, rel=1e-3)
    assert gap_added(pattern_moved) == pytest.approx(2 * np.log(0.6 / 0.4) ** 2 / 4, rel=1e-3)
    restored = HeadsLoss.from_config(paired.get_config())
    assert restored.consistency == 1.0


def test_softmax_loss_reads_one_column_per_pattern():
    from train.heads import HeadsLoss

    scheme = resolve_scheme(["normal", "a", "b", "c"])
    target = training_targets(np.array([1]), np.array([2]), scheme, weighted=False)
    right = np.array([[0.9, 0.05, 0.05, 0.9]], np.float32)
    wrong = np.array([[0.9, 0.9, 0.05, 0.05]], np.float32)
    loss = HeadsLoss(pattern_units=3)
    assert float(loss(target, right)) < float(loss(target, wrong))


def test_pattern_probabilities_from_one_sigmoid_or_a_softmax():
    assert pattern_probabilities(np.array([[0.25]])).tolist() == [[0.75, 0.25]]
    soft = np.array([[0.2, 0.3, 0.5]])
    assert pattern_probabilities(soft).tolist() == soft.tolist()
