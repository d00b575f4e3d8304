"""Score a model on a labelled folder and write the clinicians' metrics, plots and JSON.

Works for a ``.keras`` checkpoint (TensorFlow) and for an exported ``.tflite`` file (through the
device's own classifier, so the numbers are the ones a clinic would get). A model with a pattern
head is also scored on its patterns (``metrics["pattern"]``, :mod:`train.pattern_metrics`), on
every film with a pattern label and on the films it calls positive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from edge_app.preprocessing import PreprocessSpec
from train.data import CLASS_NAMES, drop_duplicates, scan
from train.loading import load_samples
from train.metrics import binary_metrics, bootstrap_ci
from train.plots import plot_confusion, plot_roc

Predict = Callable[[np.ndarray], np.ndarray]


def keras_predictor(model, batch_size: int = 64) -> Predict:
    """Screening probabilities from a Keras model for uint8 images (n, s, s); a pattern run's
    model gives [screening, pattern...] per image (``train/heads.py``) and column 0 is taken."""

    def predict(images: np.ndarray) -> np.ndarray:
        x = images[..., None].astype(np.float32)
        out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
        return out[:, 0] if out.ndim == 2 and out.shape[1] > 1 else out.reshape(-1)

    return predict


def load_predictor(model_path: str | Path) -> tuple[Predict, PreprocessSpec, float | None]:
    """(predict, preprocessing, stored threshold) for a ``.keras`` or ``.tflite`` model."""
    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        from edge_app.classifier import Classifier

        classifier = Classifier(model_path)
        return classifier.predict_batch, classifier.contract.preprocess, classifier.contract.threshold
    if model_path.suffix != ".keras":
        raise ValueError(f"{model_path}: expected a .keras checkpoint or a .tflite file")
    if not model_path.is_file():
        raise FileNotFoundError(f"model not found: {model_path}")
    import keras

    import train.heads  # noqa: F401 - registers a pattern run's loss and metrics for loading
    from train.config import TrainConfig

    config_path = model_path.parent / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} is missing: it says how images were preprocessed")
    config = TrainConfig.load(config_path)
    metrics_path = model_path.parent / "metrics.json"
    threshold = None
    if metrics_path.is_file():
        threshold = json.loads(metrics_path.read_text())["threshold"]
    model = keras.models.load_model(model_path)
    return keras_predictor(model), config.preprocess, threshold


def load_pattern_predictor(model_path: str | Path):
    """(pattern probabilities ``(n, P)`` for images, the model's label scheme) for a model with a
    pattern head, or None."""
    from train.labels import LabelScheme

    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        from edge_app.classifier import Classifier

        classifier = Classifier(model_path)
        if classifier.contract.pattern is None:
            return None

        def predict(images: np.ndarray) -> np.ndarray:
            rows = []
            for image in images:
                classifier.raw_output(image)
                rows.append(classifier.pattern_probabilities())
            return np.array(rows, dtype=np.float64).reshape(len(images), -1)

        scheme = LabelScheme.from_dict(classifier.contract.raw["heads"]["pattern"].get("label_scheme"))
        return predict, scheme
    from train.config import TrainConfig

    scheme = LabelScheme.from_dict(TrainConfig.load(model_path.parent / "config.json").extra.get("labels"))
    if not scheme.has_pattern:
        return None
    import keras

    from train.heads import keras_pattern_predictor

    return keras_pattern_predictor(keras.models.load_model(model_path)), scheme


def write_evaluation(
    labels: np.ndarray, scores: np.ndarray, threshold: float, out_dir: Path, prefix: str = "validation"
) -> dict:
    """Metrics with bootstrap intervals, ROC and confusion plots, written under ``out_dir``."""
    metrics = binary_metrics(labels, scores, threshold)
    metrics["ci95"] = bootstrap_ci(labels, scores, threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(labels, scores, metrics["auc"], threshold, out_dir / f"{prefix}_roc.png")
    plot_confusion(metrics["confusion"], CLASS_NAMES, out_dir / f"{prefix}_confusion.png")
    return metrics


def format_metrics(metrics: dict, title: str) -> str:
    """A small fixed-width table for the terminal."""
    c = metrics["confusion"]
    ci = metrics.get("ci95", {})
    rows = [title, "-" * len(title)]
    for key in ("auc", "accuracy", "sensitivity", "specificity", "precision", "npv", "f1"):
        interval = f"  (95% CI {ci[key][0]:.3f}-{ci[key][1]:.3f})" if key in ci else ""
        rows.append(f"{key:<12} {metrics[key]:.4f}{interval}")
    rows.append(f"{'threshold':<12} {metrics['threshold']:.4f}")
    rows.append(f"confusion    TP {c['tp']}  FN {c['fn']}  FP {c['fp']}  TN {c['tn']}  (n={metrics['n']})")
    return "\n".join(rows)


def evaluate(
    model_path: str | Path, data: str | Path, out_dir: str | Path | None, threshold: float | None,
    split: str = "test", skip_bad: bool = False,
) -> dict:
    """Evaluate ``model_path`` on the labelled folder ``data`` (``data/split`` or ``data`` itself)."""
    predict, spec, stored = load_predictor(model_path)
    pattern = load_pattern_predictor(model_path)
    threshold = stored if threshold is None else threshold
    if threshold is None:
        threshold = 0.5
    samples, dropped = drop_duplicates(scan(data, split, pattern[1] if pattern else None))
    loaded = load_samples(samples, spec, skip_bad=skip_bad)
    scores = predict(loaded.images)
    out = Path(out_dir) if out_dir else Path(model_path).parent / f"eval-{Path(data).name}"
    metrics = write_evaluation(loaded.labels, scores, threshold, out, prefix="eval")
    if pattern:
        from train.heads import patterns_of
        from train.pattern_metrics import pattern_validation

        metrics["pattern"] = pattern_validation(
            pattern[0], loaded.images, patterns_of(loaded), scores >= threshold, pattern[1], spec
        )
    metrics.update(
        model=str(model_path), data=str(data), duplicates_dropped=len(dropped), skipped_bad=len(loaded.bad)
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
