"""Bacterial / viral read-outs of exported pattern models on the same validation films.

    python scripts/compare_patterns.py RUN_DIR MODEL.tflite [MODEL.tflite ...]

The films are ``RUN_DIR``'s validation films that have a pattern label in its ``split.json`` (a
two-class run's pneumonia films get theirs from the Kermany file names). For a graft
(``pneumoscan-train graft-pattern``) that leaves out the films its pattern network trained on, so
every model is read on films none of them saw (each model must come from a run with the same
patient-wise split, e.g. the shipped recipe's ``--split-order earliest``). Each model reads
every film through the device classifier (int8, its own preprocessing); the script prints, per
model, the pattern figures of :func:`train.pattern_metrics.pattern_metrics` (AUC of P(viral),
viral and bacterial found at P(viral) = 0.5, accuracy, 95% bootstrap intervals) on every such
film and on the films the model's own screening calls pneumonia (what the device shows), and the
accuracy expected at the kept-aside test split's mix (242 bacterial, 148 viral, stated in issue
17: a reweighting of the two per-class figures, nothing read from that split). With two or more
models it also reads their mean pattern logit, shown where the first model calls pneumonia: what
an ensemble of them would say, before anyone builds one; and the first model's lead over each
other one on every film, in AUC and in the accuracy at the test mix, with a paired 95% bootstrap
interval that resamples patients (the same draw for both models, so the films that are easy or
hard for both cancel out: separate intervals overlap long before a difference is in doubt).

Why a script: a graft's ``metrics.json`` holds only its own Keras figures, while the question is
whether it beats the second model on the same films.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from edge_app.classifier import Classifier
from export.run import locate_run, split_samples
from train.labels import NO_PATTERN, kermany_pattern, resolve_scheme
from train.loading import load_samples
from train.metrics import roc_auc
from train.pattern_metrics import pattern_metrics

#: The kept-aside test split's pneumonia films by pattern (issue 17), for the expected accuracy.
TEST_MIX = {"bacterial": 242, "viral": 148}


def read_patterns(model: str, samples) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Pattern labels, P(each pattern) in (bacterial, viral) order, the screening decision of
    ``model`` and the patient, for each of ``samples`` it could read."""
    classifier = Classifier(model)
    head = classifier.contract.pattern
    if head is None:
        sys.exit(f"{model} has no pattern head")
    order = [list(head.labels).index(name) for name in ("bacterial", "viral")]
    loaded = load_samples(samples, classifier.preprocess)
    probabilities, called = [], []
    for image in loaded.images:
        reading = classifier.read(image, threshold=0.0)  # threshold 0: the pattern is always read
        probabilities.append([reading.pattern[i] for i in order])
        called.append(reading.probability >= classifier.contract.threshold)
    patterns = np.array([s.pattern for s in loaded.samples])
    return patterns, np.array(probabilities), np.array(called), [s.patient for s in loaded.samples]


def at_test_mix(metrics: dict) -> float:
    """Accuracy at the test split's mix from the per-class shares found."""
    total = sum(TEST_MIX.values())
    return (TEST_MIX["viral"] * metrics["sensitivity"] + TEST_MIX["bacterial"] * metrics["specificity"]) / total


def line(name: str, metrics: dict) -> str:
    ci = metrics["ci95"]
    counts = metrics["counts"]
    return (
        f"  {name}: {counts['bacterial']} bacterial / {counts['viral']} viral; "
        + ", ".join(f"{k} {metrics[k]:.3f} ({ci[k][0]:.3f}-{ci[k][1]:.3f})" for k in ("auc", "accuracy", "sensitivity", "specificity"))
        + f"; at the test mix {at_test_mix(metrics):.3f}"
    )


def pattern_samples(run_dir: str) -> list:
    """``run_dir``'s validation films that have a pattern label (module docstring)."""
    samples = split_samples(locate_run(run_dir), "validation")
    if all(s.pattern == NO_PATTERN for s in samples):  # a two-class run: the Kermany file names say
        samples = [replace(s, pattern=kermany_pattern(s.path)) if s.label == 1 else s for s in samples]
    samples = [s for s in samples if s.pattern != NO_PATTERN]
    if not samples:
        sys.exit(f"{run_dir}: no validation film has a pattern label")
    return samples


def main(run_dir: str, models: list[str]) -> None:
    samples = pattern_samples(run_dir)
    scheme = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)
    print(f"{len(samples)} validation pneumonia films of {run_dir} with a pattern label "
          "(sensitivity = viral called viral, specificity = bacterial called bacterial, at P(viral) = 0.5)")
    logits, decisions = [], []
    for model in models:
        patterns, probabilities, called, patients = read_patterns(model, samples)
        report(model, patterns, probabilities, called, scheme)
        logits.append(np.log(probabilities[:, 1] / probabilities[:, 0]))
        decisions.append(called)
    if len(models) > 1:
        # The ensemble's reading: the mean pattern logit, shown where the first model's screening
        # calls pneumonia (an ensemble would keep one screening decision).
        viral = 1.0 / (1.0 + np.exp(-np.mean(logits, axis=0)))
        report("mean pattern logit of all models", patterns, np.stack([1 - viral, viral], axis=1), decisions[0], scheme)
        for model, other in zip(models[1:], logits[1:]):
            print(paired_lead(models[0], model, patterns == 1, logits[0], other, patients))


def paired_lead(first: str, second: str, viral: np.ndarray, a: np.ndarray, b: np.ndarray, patients: list[str],
                draws: int = 2000, seed: int = 0) -> str:
    """The first model's lead over the second on every film: AUC and accuracy at the test mix
    (P(viral) = 0.5, i.e. logit 0), each with a paired patient-level 95% bootstrap interval."""
    def mix_accuracy(v: np.ndarray, z: np.ndarray) -> float:
        found = {"viral": np.mean(z[v] >= 0), "bacterial": np.mean(z[~v] < 0)}
        return sum(TEST_MIX[k] * found[k] for k in TEST_MIX) / sum(TEST_MIX.values())

    def lead(idx: np.ndarray) -> tuple[float, float]:
        v, za, zb = viral[idx], a[idx], b[idx]
        return roc_auc(v, za) - roc_auc(v, zb), mix_accuracy(v, za) - mix_accuracy(v, zb)

    groups = {}
    for i, patient in enumerate(patients):
        groups.setdefault(patient, []).append(i)
    members = list(groups.values())
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(draws):
        idx = np.concatenate([members[j] for j in rng.integers(0, len(members), len(members))])
        if viral[idx].all() or not viral[idx].any():
            continue
        samples.append(lead(idx))
    low, high = np.percentile(samples, (2.5, 97.5), axis=0)
    auc, mix = lead(np.arange(len(viral)))
    return (f"{first} minus {second}, every film ({len(members)} patients resampled): "
            f"AUC {auc:+.3f} ({low[0]:+.3f} to {high[0]:+.3f}), accuracy at the test mix {mix:+.3f} "
            f"({low[1]:+.3f} to {high[1]:+.3f})")


def report(name: str, patterns: np.ndarray, probabilities: np.ndarray, called: np.ndarray, scheme) -> None:
    print(name)
    print(line("every film", pattern_metrics(patterns, probabilities, scheme)))
    shown = np.where(called, patterns, NO_PATTERN)
    print(line(f"called pneumonia ({int(called.sum())})", pattern_metrics(shown, probabilities, scheme)))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
