"""How well the pattern head tells the patterns apart, with intervals, clean and under stress.

For two patterns (Kermany: bacterial, viral) the second is the "positive" one: AUC ranks
P(viral); sensitivity is the share of viral films called viral, specificity the share of
bacterial films called bacterial, at :data:`train.heads.PATTERN_THRESHOLD` (fixed, not tuned on
validation). Figures are given on every film with a pattern label and, as the device shows a
pattern only for a film over the screening threshold, on the films the screening head called
positive. The harder validations repeat them on each perturbation of :mod:`train.stress`
(blur, gamma, noise, ...) and of :mod:`train.shift` (framing, markers, bands, recompression).
With three or more patterns: accuracy of the most likely pattern and one-vs-rest AUC per pattern.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge_app.preprocessing import PreprocessSpec
from train.heads import PATTERN_THRESHOLD
from train.labels import NO_PATTERN, LabelScheme
from train.metrics import binary_metrics, bootstrap_ci, roc_auc

PatternPredict = Callable[[np.ndarray], np.ndarray]


def pattern_metrics(patterns: np.ndarray, probabilities: np.ndarray, scheme: LabelScheme, intervals: bool = True) -> dict:
    """Metrics over the films whose pattern label is known (``patterns != -1``)."""
    patterns = np.asarray(patterns)
    has = patterns != NO_PATTERN
    labels, probs = patterns[has], np.asarray(probabilities)[has]
    counts = {name: int((labels == i).sum()) for i, name in enumerate(scheme.patterns)}
    if len(scheme.patterns) == 2:
        if min(counts.values()) == 0:
            return {"n": int(len(labels)), "counts": counts, "note": "one pattern is absent: no AUC"}
        metrics = binary_metrics(labels == 1, probs[:, 1], PATTERN_THRESHOLD)
        if intervals:
            metrics["ci95"] = bootstrap_ci(labels == 1, probs[:, 1], PATTERN_THRESHOLD)
        return {"counts": counts, **metrics}
    predicted = probs.argmax(axis=1)
    return {
        "n": int(len(labels)),
        "counts": counts,
        "accuracy": float((predicted == labels).mean()) if len(labels) else float("nan"),
        "auc_one_vs_rest": {name: roc_auc(labels == i, probs[:, i]) for i, name in enumerate(scheme.patterns)},
    }


def pattern_validation(
    predict: PatternPredict,
    images: np.ndarray,
    patterns: np.ndarray,
    called_positive: np.ndarray,
    scheme: LabelScheme,
    spec: PreprocessSpec,
    films: list | None = None,
) -> dict:
    """The pattern head's validation record (``metrics.json`` ``pattern``; the contract's
    ``heads.pattern.validation``): clean, on films called positive, and per perturbation.
    ``films`` (:func:`train.shift.decode_originals` of the same films, in order) adds the shift
    validation; without it only the stress perturbations are run."""
    from train.shift import PERTURBATIONS as SHIFTS
    from train.shift import model_inputs
    from train.stress import PERTURBATIONS, perturb

    has = np.asarray(patterns) != NO_PATTERN
    probabilities = predict(images[has]) if has.any() else np.zeros((0, len(scheme.patterns)))
    subset = np.asarray(called_positive)[has]
    known = np.asarray(patterns)[has]
    report = {
        "patterns": list(scheme.patterns),
        "positive": scheme.patterns[-1] if len(scheme.patterns) == 2 else None,
        "threshold": PATTERN_THRESHOLD if len(scheme.patterns) == 2 else None,
        "score": "P(positive pattern)" if len(scheme.patterns) == 2 else "most likely pattern",
        "all_pattern_films": pattern_metrics(known, probabilities, scheme),
        "called_positive": pattern_metrics(known[subset], probabilities[subset], scheme),
        "stress": {},
    }
    if has.any():
        for name in PERTURBATIONS:
            degraded = predict(perturb(images[has], name, spec))
            report["stress"][name] = pattern_metrics(known, degraded, scheme, intervals=False)
    if has.any() and films is not None:
        kept = [film for film, keep in zip(films, has) if keep]
        report["shift"] = {
            name: pattern_metrics(known, predict(model_inputs(kept, name, spec)), scheme, intervals=False)
            for name in SHIFTS
        }
    for kind in ("stress", "shift"):
        summary = _summary(report.get(kind, {}))
        if summary is not None:
            report[f"{kind}_summary"] = summary
    return report


def _summary(per_perturbation: dict) -> dict | None:
    """Mean and worst AUC and accuracy over perturbations (two patterns only)."""
    worst = [m for m in per_perturbation.values() if m.get("auc") is not None]
    if not worst:
        return None
    aucs = [m["auc"] for m in worst]
    accuracies = [m["accuracy"] for m in worst]
    return {
        "mean_auc": float(np.mean(aucs)),
        "min_auc": float(np.min(aucs)),
        "min_accuracy": float(np.min(accuracies)),
        "worst": min(per_perturbation, key=lambda k: per_perturbation[k].get("auc", np.inf)),
    }


def format_pattern(report: dict) -> str:
    """A few lines for the terminal."""
    lines = []
    for key, title in (("all_pattern_films", "every film with a pattern label"), ("called_positive", "films called positive")):
        m = report[key]
        if "auc" in m:
            ci = m.get("ci95", {})
            part = ", ".join(
                f"{k} {m[k]:.3f}" + (f" ({ci[k][0]:.3f}-{ci[k][1]:.3f})" if k in ci else "")
                for k in ("auc", "accuracy", "sensitivity", "specificity")
            )
            lines.append(f"pattern ({report['positive']} positive) on {title} {m['counts']}: {part}")
        elif "accuracy" in m:
            lines.append(f"pattern on {title} {m['counts']}: accuracy {m['accuracy']:.3f}")
    for key, title in (("stress_summary", "stress"), ("shift_summary", "shift")):
        if report.get(key):
            s = report[key]
            lines.append(
                f"pattern under {title}: mean AUC {s['mean_auc']:.3f}, min AUC {s['min_auc']:.3f} ({s['worst']}), "
                f"min accuracy {s['min_accuracy']:.3f}"
            )
    return "\n".join(lines)
