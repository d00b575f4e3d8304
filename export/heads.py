"""Export of a model with a pattern head: its outputs found by name, its parity, its contract section.

The pattern logit has the same one-value shape as the screening logit, so neither can be told
from the other by shape: the converter's signature names them (``logit``, ``pattern``), and the
contract records each one's tensor name (:mod:`edge_app.contract`, ``heads``). Parity for the
pattern head is judged like the screening head's: the Keras checkpoint and this file, through
the device's classifier, on the run's validation films that have a pattern label; the pattern
decision (most likely pattern) must agree on >= 98% of them and the pattern AUC may drop by at
most 0.005. A two-class run never reaches this module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier, sigmoid, softmax
from edge_app.contract import APPLIES_WHEN
from export.parity import MAX_AUC_DROP, MIN_AGREEMENT
from train.labels import KIND_KERMANY, NO_PATTERN, LabelScheme
from train.metrics import roc_auc

#: What a nurse reads for each Kermany pattern label.
KERMANY_DISPLAY = {"bacterial": "bacterial pneumonia", "viral": "viral pneumonia"}


def signature_positions(model_path: Path) -> dict[str, tuple[int, dict]]:
    """Signature output name -> (its position in ``get_output_details()``, its details)."""
    from edge_app.runtime import find_interpreter

    _, interpreter_class = find_interpreter()
    interpreter = interpreter_class(model_path=str(model_path))
    listed = interpreter.get_output_details()
    position = {int(o["index"]): i for i, o in enumerate(listed)}
    named = interpreter.get_signature_runner().get_output_details()
    return {name: (position[int(d["index"])], listed[position[int(d["index"])]]) for name, d in named.items()}


def pattern_outputs(outputs: dict, model_path: Path, scheme: LabelScheme) -> dict:
    """``outputs`` (as :func:`export.metadata.output_description` made them, which finds the
    logit by shape) with ``logit`` re-found by signature name and ``pattern`` added."""
    from export.graph import LOGIT_OUTPUT, PATTERN_OUTPUT

    named = signature_positions(model_path)
    described = dict(outputs)
    for key, signature, meaning in (
        (LOGIT_OUTPUT, LOGIT_OUTPUT, outputs[LOGIT_OUTPUT]["meaning"]),
        (
            "pattern",
            PATTERN_OUTPUT,
            f"pattern head, pre-{'sigmoid' if scheme.pattern_units == 1 else 'softmax'} over "
            f"{list(scheme.patterns)}; read only for a film at or over the screening threshold",
        ),
    ):
        position, details = named[signature]
        described[key] = {
            "position": position,
            "name": details["name"],
            "shape": [int(x) for x in details["shape"]],
            "dtype": np.dtype(details["dtype"]).name,
            "meaning": meaning,
        }
    return described


def heads_section(
    scheme: LabelScheme, threshold: float, validation: dict | None = None, refit: dict | None = None,
    graft: dict | None = None,
) -> dict:
    """The contract's ``heads`` section (format in :mod:`edge_app.contract`). ``refit``: the run's
    ``extra.pattern_refit`` when its pattern head was re-fitted (:mod:`train.pattern_refit`);
    ``graft``: its ``extra.pattern_graft`` when the head is a network of its own (:mod:`train.pattern_graft`)."""
    pattern = {
        "output": "logit" if scheme.pattern_units == 1 else "logits",
        "tensor": "pattern",
        "labels": list(scheme.patterns),
        "applies_when": APPLIES_WHEN,
        "score": "pattern_score = 100 x P(the named pattern), the most likely one",
        "trained_on": "positive films only (loss masked for the negative class), patterns balanced",
        "limits": (
            "a radiographic pattern only: not a cause, not a reason to give or withhold "
            "antibiotics; WHO treatment guidance decides"
        ),
        "validation": validation or {},
        "label_scheme": scheme.to_dict(),
    }
    if refit:
        pattern["trained_on"] += (
            "; then re-fitted as a linear read-out of the frozen pooled features (train/pattern_refit.py)"
        )
        pattern["refit"] = {k: refit[k] for k in ("head", "C", "chosen_by", "views", "training_films") if k in refit}
    if graft:
        pattern["trained_on"] = (
            "positive films only, by a network of its own beside the screening network (train/pattern_graft.py): "
            "the screening decision is the screening run's, unchanged"
        )
        pattern["graft"] = {k: graft[k] for k in ("head", "validation_films_left_out", "pattern_run_data") if k in graft}
    if scheme.kind == KIND_KERMANY:
        pattern["display"] = dict(KERMANY_DISPLAY)
    return {
        "screening": {
            "output": "logit",
            "tensor": "logit",
            "labels": list(scheme.screening),
            "threshold": float(threshold),
            "decision": True,
        },
        "pattern": pattern,
    }


def keras_pattern_probabilities(logits: np.ndarray) -> np.ndarray:
    """``(n, P)`` probabilities from Keras pattern logits ``(n, units)``, as the device computes them."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 1:
        p = np.asarray(sigmoid(logits[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    return np.stack([softmax(row) for row in logits])


def device_pattern_probabilities(model_path: Path, images: np.ndarray) -> np.ndarray:
    """``(n, P)`` pattern probabilities of the file through the device classifier, every film
    read whatever its screening score (parity compares the head itself)."""
    classifier = Classifier(model_path, threads=1)
    rows = []
    for image in images:
        classifier.raw_output(image)
        rows.append(classifier.pattern_probabilities())
    return np.array(rows, dtype=np.float64).reshape(len(images), -1)


def pattern_parity(patterns: np.ndarray, reference: np.ndarray, device: np.ndarray) -> dict:
    """Agreement of the pattern decision and AUC drop, over films with a pattern label."""
    has = np.asarray(patterns) != NO_PATTERN
    labels, ref, dev = np.asarray(patterns)[has], reference[has], device[has]
    agree = ref.argmax(axis=1) == dev.argmax(axis=1)
    report = {
        "images": int(has.sum()),
        "agreement": float(agree.mean()) if len(agree) else None,
        "disagreements": int((~agree).sum()),
        "max_abs_probability_diff": float(np.abs(ref - dev).max()) if len(ref) else None,
    }
    if ref.shape[1] == 2 and len(set(labels.tolist())) == 2:
        keras_auc, device_auc = roc_auc(labels == 1, ref[:, 1]), roc_auc(labels == 1, dev[:, 1])
        report.update(keras_auc=keras_auc, tflite_auc=device_auc, auc_drop=keras_auc - device_auc)
    return report


def pattern_failures(report: dict) -> list[str]:
    problems = []
    if report["agreement"] is not None and report["agreement"] < MIN_AGREEMENT:
        problems.append(f"pattern decisions agree on {report['agreement']:.1%} of {report['images']} films (minimum {MIN_AGREEMENT:.0%})")
    if report.get("auc_drop") is not None and report["auc_drop"] > MAX_AUC_DROP:
        problems.append(f"pattern AUC drops from {report['keras_auc']:.4f} to {report['tflite_auc']:.4f} (more than {MAX_AUC_DROP})")
    return problems


def format_pattern_parity(report: dict) -> str:
    line = (
        f"  pattern head on {report['images']} validation films with a pattern: decision agreement "
        f"{report['agreement']:.2%} ({report['disagreements']} differ)" if report["agreement"] is not None
        else "  pattern head: no validation film has a pattern label"
    )
    if report.get("auc_drop") is not None:
        line += f", AUC Keras {report['keras_auc']:.4f}, TFLite {report['tflite_auc']:.4f}"
    return line
