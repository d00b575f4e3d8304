"""Screening figures of two exported models on the same validation films, side by side.

    python scripts/compare_screening.py RUN_DIR MODEL_A.tflite MODEL_B.tflite [...]

Scores the validation split of ``RUN_DIR`` (its ``split.json``) through the device classifier
for each model, at each model's own threshold, and prints AUC, accuracy, sensitivity and
specificity with 95% bootstrap intervals, then the same on every perturbation of the harder
validation (``train/stress.py``) summarised as mean / min AUC and min specificity / sensitivity.
The question it answers: does a pattern model's screening decision cost anything against the
shipped model's, on films neither was trained on? Each model must have been trained with the same
split (same seed and ``--split-order``), else the films are not held out for both: the script
refuses a model whose contract names a run whose validation list differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_app.classifier import Classifier
from edge_app.contract import read_metadata
from export.run import locate_run, split_samples
from train.loading import load_samples
from train.metrics import binary_metrics, bootstrap_ci
from train.stress import stress_report


def figures(model: Path, validation) -> dict:
    """Screening figures of ``model`` on ``validation`` samples decoded with its own preprocessing."""
    classifier = Classifier(model)
    spec = classifier.preprocess
    loaded = load_samples(validation, spec)
    images, labels = loaded.images, loaded.labels
    threshold = classifier.contract.threshold
    scores = classifier.predict_batch(images)
    m = binary_metrics(labels, scores, threshold)
    m["ci95"] = bootstrap_ci(labels, scores, threshold)
    m["stress"] = stress_report(classifier.predict_batch, images, labels, threshold, spec)["summary"]
    return m


def main(run_dir: str, models: list[str]) -> None:
    run = locate_run(run_dir)
    validation = split_samples(run, "validation")
    for model in models:
        source = Path(read_metadata(model)["source"]["run"])
        theirs = source / "split.json"
        if not theirs.is_file():
            print(f"note: {theirs} (the run {model} came from) is not here: same films not checked", file=sys.stderr)
        elif json.loads(theirs.read_text())["validation"] != run.split["validation"]:
            sys.exit(f"{model} was validated on other films than {run_dir}: not comparable")
    report = {}
    for model in models:
        m = figures(Path(model), validation)
        report[model] = m
        ci = m["ci95"]
        s = m["stress"]
        print(
            f"{model}: n={m['n']} threshold {m['threshold']:.4f}; "
            + ", ".join(f"{k} {m[k]:.4f} ({ci[k][0]:.3f}-{ci[k][1]:.3f})" for k in ("auc", "accuracy", "sensitivity", "specificity"))
            + f"; stress mean AUC {s['mean_auc']:.4f}, min AUC {s['min_auc']:.4f}, "
            f"min spec {s['min_specificity']:.3f}, min sens {s['min_sensitivity']:.3f}"
        )
    print(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
