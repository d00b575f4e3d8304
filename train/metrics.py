"""The numbers clinicians ask for, in plain numpy so export and tests use the same code.

Positive = PNEUMONIA. Sensitivity is the share of sick children flagged; specificity the share of
healthy children cleared. A missed pneumonia costs more than a referral, so thresholds are chosen
to hold sensitivity first (see :func:`choose_threshold`).
"""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count half)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds descending; an image is
    called positive when its score is >= the threshold."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.unique(scores)[::-1]
    pos, neg = max(labels.sum(), 1), max((~labels).sum(), 1)
    tpr = np.array([(scores[labels] >= t).sum() / pos for t in thresholds])
    fpr = np.array([(scores[~labels] >= t).sum() / neg for t in thresholds])
    return (np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thresholds])


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(scores) >= threshold
    return {
        "tp": int((predicted & labels).sum()),
        "fn": int((~predicted & labels).sum()),
        "fp": int((predicted & ~labels).sum()),
        "tn": int((~predicted & ~labels).sum()),
    }


def _ratio(a: int, b: int) -> float:
    return float(a / b) if b else float("nan")


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Accuracy, sensitivity, specificity, precision, F1, AUC and the confusion matrix."""
    c = confusion(labels, scores, threshold)
    sensitivity = _ratio(c["tp"], c["tp"] + c["fn"])
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    f1 = _ratio(2 * precision * sensitivity, precision + sensitivity) if c["tp"] else 0.0
    return {
        "n": int(len(labels)),
        "threshold": float(threshold),
        "accuracy": _ratio(c["tp"] + c["tn"], sum(c.values())),
        "sensitivity": sensitivity,
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"]),
        "precision": precision,
        "npv": _ratio(c["tn"], c["tn"] + c["fn"]),
        "f1": f1,
        "auc": roc_auc(labels, scores),
        "confusion": c,
    }


def choose_threshold(
    labels: np.ndarray, scores: np.ndarray, rule: str = "sensitivity", target: float = 0.97
) -> tuple[float, str]:
    """Pick the operating threshold on validation; returns (threshold, how it was chosen).

    ``sensitivity``: the highest threshold (so the highest specificity) whose sensitivity is still
    >= ``target``. ``youden``: maximise sensitivity + specificity - 1. ``fixed``: ``target`` itself.
    The threshold sits halfway to the next lower score, so it does not ride on one image.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if rule == "fixed":
        return float(target), f"fixed at {target}"
    candidates = np.unique(scores)[::-1]
    pos, neg = labels.sum(), (~labels).sum()
    sens = np.array([(scores[labels] >= t).sum() / pos for t in candidates])
    spec = np.array([(scores[~labels] < t).sum() / neg for t in candidates])
    if rule == "sensitivity":
        ok = np.flatnonzero(sens >= target)
        index = int(ok[0]) if len(ok) else len(candidates) - 1
        how = f"highest specificity with validation sensitivity >= {target}"
    elif rule == "youden":
        index = int(np.argmax(sens + spec))
        how = "maximum Youden index (sensitivity + specificity - 1) on validation"
    else:
        raise ValueError(f"unknown threshold rule {rule!r}")
    threshold = candidates[index]
    lower = candidates[index + 1] if index + 1 < len(candidates) else threshold
    return float((threshold + lower) / 2.0), how


def bootstrap_ci(
    labels: np.ndarray, scores: np.ndarray, threshold: float, n: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile-bootstrap intervals (resampling images) for the headline metrics."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    rng = np.random.default_rng(seed)
    keys = ("accuracy", "sensitivity", "specificity", "auc")
    draws = {k: [] for k in keys}
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue
        m = binary_metrics(labels[idx], scores[idx], threshold)
        for k in keys:
            draws[k].append(m[k])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}



#: Threshold rules :func:`threshold_by_rule` knows.
THRESHOLD_RULES = ("sensitivity", "shift-robust")


def shift_robust_threshold(
    labels: np.ndarray, score_sets: dict[str, np.ndarray], target: float
) -> tuple[float, str]:
    """The highest threshold whose sensitivity is >= ``target`` on *every* score set (the clean
    validation and each shift perturbation of it); returns (threshold, how it was chosen).

    Why: a threshold chosen on clean validation alone sits just under the clean pneumonia
    scores, and on films framed or labelled differently the scores move: the shipped model's
    threshold kept sensitivity but lost a third of the specificity on new films. Requiring the
    target under every framing, marker and recompression at once makes the threshold one that a
    shift of that size cannot push below the target, and taking the highest such threshold keeps
    as much specificity as that guarantee allows. Per set, the cut is placed as in
    :func:`choose_threshold` (halfway to the next lower score).
    """
    cuts = {name: choose_threshold(labels, scores, "sensitivity", target)[0] for name, scores in score_sets.items()}
    binding = min(cuts, key=cuts.get)
    how = (
        f"shift-robust: highest threshold with sensitivity >= {target} on clean validation and on each of "
        f"{len(score_sets) - 1} framing/marker/recompression perturbations of it (binding: {binding})"
    )
    return float(cuts[binding]), how
