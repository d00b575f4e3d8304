"""``export.threshold``: the run's rule applied to the converted file's own scores, or the run's
threshold kept when the rule cannot be applied or the threshold was not set by it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from export.threshold import device_threshold, rule_of
from train.config import TrainConfig
from train.metrics import choose_threshold, shift_robust_threshold
from train.shift import sigmoid

RNG = np.random.default_rng(0)
LABELS = np.array([0] * 40 + [1] * 60)


def _logits(shift: float = 0.0) -> np.ndarray:
    return np.where(LABELS == 1, 1.5, -1.5) + RNG.normal(0.0, 1.0, LABELS.size) + shift


def _run(rule: str, target: float, threshold: float, description: str) -> SimpleNamespace:
    """What device_threshold reads of an export.run.Run: the config and the stored threshold."""
    config = TrainConfig(threshold_rule=rule, sensitivity_target=target)
    return SimpleNamespace(config=config, threshold=threshold, threshold_rule=description)


@pytest.fixture(scope="module")
def shifted() -> dict[str, np.ndarray]:
    return {"clean": _logits(), "crop_10": _logits(-0.4), "aspect_1.25": _logits(0.3)}


def test_shift_robust_is_re_picked_on_the_file_scores(shifted):
    scores = sigmoid(shifted["clean"])
    expected, how = shift_robust_threshold(
        LABELS, {"clean": scores, **{k: sigmoid(v) for k, v in shifted.items() if k != "clean"}}, 0.95
    )
    # the checkpoint's scores were bound by another set: the rule is the same
    run = _run("shift-robust", 0.95, 0.4321, rule_of(how) + " (binding: pad_black_25)")

    threshold, rule = device_threshold(run, LABELS, scores, shifted)

    assert threshold == pytest.approx(expected) and threshold != 0.4321
    assert rule.startswith(how) and "own scores" in rule and "0.4321" in rule
    # the guarantee now holds on this file's scores: sensitivity >= 0.95 on every set
    for logits in shifted.values():
        assert (sigmoid(logits)[LABELS == 1] >= threshold).mean() >= 0.95


def test_sensitivity_rule_is_re_picked_on_the_clean_scores(shifted):
    scores = sigmoid(shifted["clean"])
    expected, how = choose_threshold(LABELS, scores, "sensitivity", 0.97)
    threshold, rule = device_threshold(_run("sensitivity", 0.97, 0.25, how), LABELS, scores, shifted)
    assert threshold == pytest.approx(expected)
    assert rule.startswith(how) and "0.2500" in rule


@pytest.mark.parametrize(
    "configured, target",
    [
        ("shift-robust", 0.95),  # `pneumoscan-train shift --update --threshold-rule sensitivity` on a shift-robust run
        ("sensitivity", 0.95),  # the same rule with another target is another rule
    ],
)
def test_a_threshold_set_by_another_rule_is_kept(shifted, configured, target):
    scores = sigmoid(shifted["clean"])
    _, other = choose_threshold(LABELS, scores, "sensitivity", 0.97)
    threshold, rule = device_threshold(_run(configured, target, 0.25, other), LABELS, scores, shifted)
    assert threshold == 0.25
    assert rule.startswith(other) and "kept: not set by the run's configured rule" in rule


def test_keep_and_unknown_rules_keep_the_run_threshold(shifted):
    scores = sigmoid(shifted["clean"])
    _, how = choose_threshold(LABELS, scores, "sensitivity", 0.95)
    kept, rule = device_threshold(_run("sensitivity", 0.95, 0.3, how), LABELS, scores, shifted, keep=True)
    assert kept == 0.3 and "--keep-run-threshold" in rule
    unknown, rule = device_threshold(_run("youden", 0.95, 0.3, "maximum Youden index"), LABELS, scores, shifted)
    assert unknown == 0.3 and "unknown" in rule


def test_rule_of_drops_only_the_binding_set():
    text = "shift-robust: highest threshold with sensitivity >= 0.95 on ... (binding: aspect_0.8)"
    assert rule_of(text) == "shift-robust: highest threshold with sensitivity >= 0.95 on ..."
    assert rule_of("highest specificity with validation sensitivity >= 0.97") == (
        "highest specificity with validation sensitivity >= 0.97"
    )
