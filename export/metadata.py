"""The contract a ``.tflite`` file carries (format ``pneumoscan-model/1``, see :mod:`edge_app.contract`).

One dict, built here and nowhere else, written into the file and beside it. The device reads
its labels, input, threshold and preprocessing from it and never hardcodes them; people read
the rest (where the model came from, how it was quantised, how well *this file* did).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone

import numpy as np

from edge_app import __version__ as PACKAGE_VERSION
from edge_app.contract import FORMAT
from train.data import CLASS_NAMES

#: Uncertain band: below its lower edge at most this share of validation pneumonia cases score...
BAND_MAX_MISSED = 0.01
#: ...and above its upper edge at most this share of validation normal children score.
BAND_MAX_FALSE_ALARM = 0.05


def weights_sha256(model) -> str:
    """SHA-256 over every weight array (name, shape, dtype, bytes), not over the ``.keras`` zip,
    whose bytes also change with timestamps and library versions while the model does not."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(variable.numpy())
        digest.update(f"{variable.path}|{value.shape}|{value.dtype}\n".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def model_version(weights_hash: str, package_version: str = PACKAGE_VERSION) -> str:
    """``<package version>+<first 12 hex of the weights hash>``, e.g. ``0.1.0+3fa2c0d91b7e``."""
    separator = "." if "+" in package_version else "+"
    return f"{package_version}{separator}{weights_hash[:12]}"


def uncertain_band(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    max_missed: float = BAND_MAX_MISSED,
    max_false_alarm: float = BAND_MAX_FALSE_ALARM,
) -> tuple[list[float] | None, str]:
    """The probability interval reported as "uncertain", chosen on validation; returns (band, rule).

    Outside the band the call is one the model almost never got wrong on validation *in that
    direction*: below the lower edge lie at most 1% of the pneumonia cases (the costly error, a
    missed pneumonia, is rare there), above the upper edge at most 5% of the normal children. In
    between, both classes still occur often enough that a clinician should look. The edges come
    from the scores of the file being exported, so they match what the device computes. The band
    is widened to contain the threshold if needed (a weak or very strong model can put an edge on
    the other side of it). ``None`` when validation lacks one of the classes.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = np.sort(scores[labels]), np.sort(scores[~labels])[::-1]
    rule = (
        f"from validation scores of this file: lower edge keeps >= {1 - max_missed:.0%} of pneumonia "
        f"cases at or above it, upper edge has <= {max_false_alarm:.0%} of normal cases at or above "
        f"it; widened to contain the threshold"
    )
    if not len(positives) or not len(negatives):
        return None, "no band: validation lacks one of the classes"
    # At most floor(max_missed * n) positives may score below the lower edge.
    low = float(positives[int(math.floor(max_missed * len(positives)))])
    # At most floor(max_false_alarm * n) negatives may score at or above the upper edge: put it
    # just above the next-highest negative.
    allowed = int(math.floor(max_false_alarm * len(negatives)))
    high = float(np.nextafter(negatives[allowed], np.inf)) if allowed < len(negatives) else 0.0
    low, high = min(low, threshold), max(high, threshold)
    return [low, min(high, 1.0)], rule


def shift_summary(report: dict) -> dict:
    """The contract's record of the shift validation (:func:`train.shift.shift_report`): its
    summary, and per perturbation the figures a reviewer compares (no confusion matrices)."""
    keys = ("auc", "sensitivity", "specificity", "flip_rate", "mean_abs_delta_logit", "normal_mean_delta_logit")
    per = {
        name: {k: round(float(m[k]), 4) for k in keys if m.get(k) is not None}
        for name, m in report.items()
        if name not in ("summary", "clean")
    }
    return {"summary": report["summary"], "perturbations": per}


def _clean(value):
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def output_description(interpreter_outputs: list[dict], map_shape: tuple[int, ...]) -> dict:
    """Where to find each output in ``get_output_details()`` and what it means."""
    logit = next(i for i, o in enumerate(interpreter_outputs) if int(np.prod(o["shape"])) == 1)
    heat = next(i for i, o in enumerate(interpreter_outputs) if len(o["shape"]) == 4)
    return {
        "logit": {
            "position": logit,
            "name": interpreter_outputs[logit]["name"],
            "shape": [int(x) for x in interpreter_outputs[logit]["shape"]],
            "dtype": np.dtype(interpreter_outputs[logit]["dtype"]).name,
            "meaning": "pre-sigmoid score; P(PNEUMONIA) = sigmoid(logit)",
        },
        "heatmap": {
            "position": heat,
            "name": interpreter_outputs[heat]["name"],
            "shape": [int(x) for x in map_shape],
            "dtype": np.dtype(interpreter_outputs[heat]["dtype"]).name,
            "kind": "local logit map",
            "meaning": (
                "the model's dense head applied at each cell of the last feature map (class "
                "activation map, same units as the logit; higher = looks more like pneumonia). "
                "Cell (0, 0) is the image's top-left; upsample to image_size to overlay."
            ),
        },
    }


def build_metadata(
    *,
    run,
    quantize: str,
    quantization_description: str,
    input_details: dict,
    outputs: dict,
    weights_hash: str,
    calibration: dict,
    gate: dict,
    validation_metrics: dict | None = None,
    uncertain: tuple[list[float] | None, str] = (None, "not computed yet"),
    parity: dict | None = None,
) -> dict:
    """The contract dict for a file exported from ``run`` (an :class:`export.run.Run`)."""
    spec = run.spec
    band, band_rule = uncertain
    metadata = {
        "format": FORMAT,
        "labels": list(CLASS_NAMES),
        "image_size": spec.image_size,
        "channels": 1,
        "input_shape": [int(x) for x in input_details["shape"]],
        "input_dtype": np.dtype(input_details["dtype"]).name,
        "input_quantization": {
            "scale": float(input_details["quantization"][0]),
            "zero_point": int(input_details["quantization"][1]),
        },
        "input_range": "raw preprocessed pixels 0..255 (the model rescales internally)",
        "output": "logit",
        "outputs": outputs,
        "threshold": run.threshold,
        "threshold_rule": run.threshold_rule,
        "uncertain_band": band,
        "uncertain_band_rule": band_rule,
        "version": model_version(weights_hash),
        "package_version": PACKAGE_VERSION,
        "weights_sha256": weights_hash,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "preprocessing": spec.to_dict(),
        "preprocessing_id": spec.id,
        "training_data_fingerprint": run.data_fingerprint,
        "quantization": {"mode": quantize, "description": quantization_description, "calibration": calibration},
        "validation_metrics": validation_metrics or {},
        "parity": parity or {},
        "gate": gate,
        "source": {
            "run": str(run.folder),
            "checkpoint": run.checkpoint.name,
            "keras_validation_auc": run.metrics.get("auc"),
            "train_config": {
                k: v for k, v in run.config.to_dict().items() if k not in ("extra", "preprocessing")
            },
        },
    }
    return _clean(metadata)
