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
from train.data import CLASS_NAMES, drop_duplicates, scan, split_samples
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


def keras_logits(model, batch_size: int = 64) -> Predict:
    """Pre-sigmoid logits from a Keras model for uint8 images (n, s, s): what the device's int8
    file emits, and what the shift validation compares (probabilities saturate)."""
    from train.model import logit_model

    return keras_predictor(logit_model(model), batch_size)


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
        raise ValueError(f"{model_path} has no stored threshold (no metrics.json): pass --threshold")
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


def shift_validate(
    model_path: str | Path,
    data: str | Path | None = None,
    split_order: str = "earliest",
    threshold: float | None = None,
    rule: str | None = None,
    target: float = 0.95,
    update: bool = False,
    logits_out: str | Path | None = None,
    log=print,
) -> dict:
    """The shift validation (:mod:`train.shift`) of a run's checkpoint or of an exported file.

    A ``.keras`` checkpoint is scored on its run's own validation split (``split.json``); a
    ``.tflite`` file through the device classifier on the validation split that ``fit`` would
    make from ``data`` with ``split_order``. ``rule`` ("sensitivity" or "shift-robust") re-picks
    the threshold at ``target``; ``update`` writes it, the shift report and the clean metrics at
    it into the run's ``metrics.json`` (only for a checkpoint in its run folder). ``logits_out``
    saves every set's logits (``.npz``, as ``fit`` does in ``shift_logits.npz``).
    """
    from train.config import TrainConfig
    from train.metrics import choose_threshold, shift_robust_threshold
    from train.shift import decode_originals, shift_logits, shift_report, sigmoid

    model_path = Path(model_path)
    if model_path.suffix == ".tflite":
        from edge_app.classifier import Classifier

        if data is None:
            raise ValueError("a .tflite model needs DATA to rebuild its validation split")
        from train.data import gather

        _, samples, _ = gather(TrainConfig(data=str(data), split_order=split_order), log)
        paths, labels = [s.path for s in samples], np.array([s.label for s in samples])
        classifier = Classifier(model_path)
        spec, stored = classifier.contract.preprocess, classifier.contract.threshold

        def score(images: np.ndarray) -> np.ndarray:
            return np.array([classifier.raw_output(img) for img in images])

    else:
        import keras

        run = model_path.parent if model_path.suffix == ".keras" else model_path
        checkpoint = model_path if model_path.suffix == ".keras" else run / "model.keras"
        samples = split_samples(json.loads((run / "split.json").read_text()), "validation")
        paths, labels = [s.path for s in samples], np.array([s.label for s in samples])
        spec = TrainConfig.load(run / "config.json").preprocess
        metrics_file = run / "metrics.json"
        # A run stopped before it finished has a checkpoint but no metrics.json: give a rule.
        stored = json.loads(metrics_file.read_text())["threshold"] if metrics_file.is_file() else None
        score = keras_logits(keras.models.load_model(checkpoint, compile=False))

    log(f"shift validation: {len(paths)} validation films, {spec.id}")
    logits = shift_logits(score, decode_originals(paths), spec)
    how = "stored with the model"
    if rule == "shift-robust":
        sets = {k: sigmoid(v) for k, v in logits.items()}
        threshold, how = shift_robust_threshold(labels, sets, target)
    elif rule == "sensitivity":
        threshold, how = choose_threshold(labels, sigmoid(logits["clean"]), "sensitivity", target)
    elif rule is not None:
        raise ValueError(f"unknown threshold rule {rule!r}")
    threshold = stored if threshold is None else threshold
    if threshold is None:
        raise ValueError(f"{model_path} has no stored threshold (no metrics.json): pass --threshold-rule")
    report = shift_report(labels, logits, threshold)
    if logits_out is not None:
        np.savez(logits_out, labels=labels, **logits)
    if update:
        if model_path.suffix == ".tflite":
            raise ValueError("--update rewrites a run folder's metrics.json; give the run's model.keras")
        metrics_path = run / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {"finished_by": "pneumoscan-train shift"}
        clean = binary_metrics(labels, sigmoid(logits["clean"]), threshold)
        metrics.update({k: v for k, v in clean.items()})
        metrics["ci95"] = bootstrap_ci(labels, sigmoid(logits["clean"]), threshold)
        metrics["threshold_rule"] = how
        metrics["shift"] = report
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    report["summary"]["threshold_rule"] = how
    return report
