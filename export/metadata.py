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
from edge_app.thresholds import BAND_MAX_FALSE_ALARM, BAND_MAX_MISSED  # noqa: F401 (re-exported)
from edge_app.thresholds import uncertain_band as _uncertain_band
from train.data import CLASS_NAMES

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
    labels: np.ndarray, scores: np.ndarray, threshold: float, **limits
) -> tuple[list[float] | None, str]:
    """The uncertain band stored in the file: :func:`edge_app.thresholds.uncertain_band` on the
    validation scores of the file being exported, so its edges match what the device computes
    (``pneumoscan calibrate`` applies the same rule to a site's films)."""
    band, rule = _uncertain_band(labels, scores, threshold, **limits)
    return band, (f"from validation scores of this file: {rule}" if band is not None else rule)


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
    threshold: tuple[float, str] | None = None,
) -> dict:
    """The contract dict for a file exported from ``run`` (an :class:`export.run.Run`);
    ``threshold`` is the file's own (value, rule), :func:`export.threshold.device_threshold`,
    once its scores are known (the run's before)."""
    spec = run.spec
    value, rule = threshold or (run.threshold, run.threshold_rule)
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
        "threshold": float(value),
        "threshold_rule": rule,
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
            "keras_threshold": run.threshold,
            "train_config": {
                k: v for k, v in run.config.to_dict().items() if k not in ("extra", "preprocessing")
            },
        },
    }
    return _clean(metadata)
