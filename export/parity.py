"""Proof, at export time, that the file scores like the checkpoint it came from.

Quantisation changes numbers; what matters is whether it changes *decisions* and *ranking*.
Both models score the run's validation split (images the conversion never saw): the Keras
checkpoint in TensorFlow, the ``.tflite`` through :class:`edge_app.classifier.Classifier` at one
thread, i.e. the code path and the worst-case speed of a clinic device. The heatmap output is
compared with the same map computed by Keras, image by image.

Pass/fail: decision agreement at the threshold >= 98% and AUC drop <= 0.005 (the goals printed
beside them are stricter: 99% agreement, heatmap correlation >= 0.9).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier, sigmoid
from edge_app.runtime import find_interpreter
from train.metrics import roc_auc

MIN_AGREEMENT = 0.98
GOAL_AGREEMENT = 0.99
MAX_AUC_DROP = 0.005
GOAL_MAP_CORRELATION = 0.9
#: Heatmaps compared per export: enough to see a systematic error, cheap at any image size.
MAP_IMAGES = 16


def tflite_scores(model_path: Path, images: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray, str]:
    """Device probabilities, per-image latencies (ms, inference only) and the runtime's name."""
    classifier = Classifier(model_path, threads=threads)
    if len(images):
        classifier.classify(images[0])  # first call allocates and plans; not a clinic's steady state
    scores, latencies = np.empty(len(images)), np.empty(len(images))
    for i, image in enumerate(images):
        start = time.perf_counter()
        scores[i] = classifier.classify(image)
        latencies[i] = 1000.0 * (time.perf_counter() - start)
    return scores, latencies, classifier.runtime


def tflite_maps(model_path: Path, images: np.ndarray) -> np.ndarray:
    """The file's ``heatmap`` output ``(n, h, w)`` for uint8 images, quantised as the device would."""
    _, interpreter_class = find_interpreter()
    interpreter = interpreter_class(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    target = next(o for o in interpreter.get_output_details() if len(o["shape"]) == 4)
    dtype = np.dtype(source["dtype"])
    scale, zero_point = source["quantization"]
    maps = []
    for image in images:
        x = image.reshape(source["shape"]).astype(np.float32)
        if dtype.kind in "iu":
            x = np.clip(np.round(x / scale + zero_point) if scale else x, np.iinfo(dtype).min, np.iinfo(dtype).max)
        interpreter.set_tensor(source["index"], x.astype(dtype))
        interpreter.invoke()
        out = interpreter.get_tensor(target["index"]).astype(np.float64)
        out_scale, out_zero = target["quantization"]
        if np.dtype(target["dtype"]).kind in "iu" and out_scale:
            out = (out - out_zero) * out_scale
        maps.append(out[0, :, :, 0])
    return np.stack(maps) if maps else np.zeros((0, 0, 0))


def map_correlations(reference: np.ndarray, device: np.ndarray) -> np.ndarray:
    """Pearson correlation per image; NaN where either map is flat (nothing to correlate)."""
    out = np.full(len(reference), np.nan)
    for i, (a, b) in enumerate(zip(reference, device)):
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        denominator = np.sqrt((a * a).sum() * (b * b).sum())
        if denominator > 1e-12:
            out[i] = float((a * b).sum() / denominator)
    return out


def map_indices(n: int, count: int = MAP_IMAGES) -> np.ndarray:
    """Evenly spaced validation images for the heatmap comparison."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).round().astype(int)) if n else np.zeros(0, int)


def _finite(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def measure(
    labels: np.ndarray,
    keras_probabilities: np.ndarray,
    device_probabilities: np.ndarray,
    threshold: float,
    keras_maps: np.ndarray,
    device_maps: np.ndarray,
    latencies_ms: np.ndarray,
    file_bytes: int,
    runtime: str,
) -> dict:
    """The parity figures stored in the model's metadata and printed at export."""
    agree = (keras_probabilities >= threshold) == (device_probabilities >= threshold)
    difference = np.abs(keras_probabilities - device_probabilities)
    keras_auc, device_auc = roc_auc(labels, keras_probabilities), roc_auc(labels, device_probabilities)
    correlations = map_correlations(keras_maps, device_maps)
    finite = correlations[np.isfinite(correlations)]
    return {
        "images": int(len(labels)),
        "threshold": float(threshold),
        "agreement": float(agree.mean()) if len(agree) else None,
        "disagreements": int((~agree).sum()),
        "mean_abs_probability_diff": float(difference.mean()) if len(difference) else None,
        "max_abs_probability_diff": float(difference.max()) if len(difference) else None,
        "keras_auc": _finite(keras_auc),
        "tflite_auc": _finite(device_auc),
        "auc_drop": _finite(keras_auc - device_auc),
        "heatmap": {
            "images": int(len(correlations)),
            "flat_maps": int(len(correlations) - len(finite)),
            "correlation_median": float(np.median(finite)) if len(finite) else None,
            "correlation_min": float(finite.min()) if len(finite) else None,
        },
        "latency_ms": {
            "threads": 1,
            "median": float(np.median(latencies_ms)) if len(latencies_ms) else None,
            "mean": float(np.mean(latencies_ms)) if len(latencies_ms) else None,
        },
        "file_bytes": int(file_bytes),
        "runtime": runtime,
        "limits": {"min_agreement": MIN_AGREEMENT, "max_auc_drop": MAX_AUC_DROP},
    }


def failures(report: dict, min_agreement: float = MIN_AGREEMENT, max_auc_drop: float = MAX_AUC_DROP) -> list[str]:
    """Why the file fails parity (empty: it passes)."""
    problems = []
    if report["agreement"] is not None and report["agreement"] < min_agreement:
        problems.append(
            f"decisions agree on {report['agreement']:.1%} of {report['images']} validation images "
            f"(minimum {min_agreement:.0%})"
        )
    if report["auc_drop"] is not None and report["auc_drop"] > max_auc_drop:
        problems.append(
            f"AUC drops from {report['keras_auc']:.4f} to {report['tflite_auc']:.4f} "
            f"(more than {max_auc_drop})"
        )
    return problems


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_report(report: dict) -> str:
    """The parity table printed after every export."""
    heat = report["heatmap"]
    latency = report["latency_ms"]
    agreement_goal = "ok" if (report["agreement"] or 0) >= GOAL_AGREEMENT else f"below goal {GOAL_AGREEMENT:.0%}"
    heat_goal = (
        "ok" if (heat["correlation_median"] or 0) >= GOAL_MAP_CORRELATION else f"below goal {GOAL_MAP_CORRELATION}"
    )
    lines = [
        f"parity on {report['images']} validation images (Keras checkpoint vs this file via {report['runtime']}):",
        f"  decision agreement at threshold {report['threshold']:.4f}: "
        f"{_fmt(report['agreement'], '.2%')} ({report['disagreements']} differ) [{agreement_goal}]",
        f"  |probability difference|: mean {_fmt(report['mean_abs_probability_diff'], '.5f')}, "
        f"max {_fmt(report['max_abs_probability_diff'], '.5f')}",
        f"  AUC: Keras {_fmt(report['keras_auc'], '.4f')}, TFLite {_fmt(report['tflite_auc'], '.4f')} "
        f"(drop {_fmt(report['auc_drop'], '+.4f')})",
        f"  heatmap correlation with Keras on {heat['images']} images: median "
        f"{_fmt(heat['correlation_median'], '.3f')}, min {_fmt(heat['correlation_min'], '.3f')}"
        + (f", {heat['flat_maps']} flat" if heat["flat_maps"] else "")
        + f" [{heat_goal}]",
        f"  file size {report['file_bytes'] / 1024:.1f} KB; latency at 1 thread: median "
        f"{_fmt(latency['median'], '.2f')} ms, mean {_fmt(latency['mean'], '.2f')} ms per image (inference only)",
    ]
    for threads, ms in report.get("latency_ms_more_threads", {}).items():
        lines.append(f"  latency at {threads} threads: median {ms:.2f} ms per image")
    return "\n".join(lines)


def keras_probabilities(logits: np.ndarray) -> np.ndarray:
    """Probabilities from Keras logits with the same sigmoid the device applies."""
    return np.asarray(sigmoid(logits), dtype=np.float64)
