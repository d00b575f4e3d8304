"""The paired-view consistency term (train/losses.py), shared by the binary model and the pattern head."""

from __future__ import annotations

import pytest


def test_paired_consistency_loss_adds_the_squared_logit_gap_of_each_pair():
    import numpy as np
    import tensorflow as tf

    from train.losses import PairedConsistencyLoss

    loss = PairedConsistencyLoss(weight=1.0)
    labels = tf.constant([0.0, 1.0, 0.0, 1.0])  # [view 1 of films a, b; view 2 of films a, b]
    probs = tf.constant([[0.5], [0.5], [0.5], [0.8]])
    per_sample = loss.call(labels, probs).numpy()
    bce = -np.log(0.5)
    gap = np.log(4.0) ** 2  # logit(0.8) - logit(0.5)
    assert per_sample == pytest.approx([bce, bce + gap, bce, -np.log(0.8) + gap], rel=1e-4)
    restored = PairedConsistencyLoss.from_config(PairedConsistencyLoss(0.3, 0.1).get_config())
    assert (restored.weight, restored.label_smoothing) == (0.3, 0.1)
