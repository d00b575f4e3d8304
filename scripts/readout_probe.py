"""How well could a linear bacterial / viral read-out of an *exported* model's own features do?

    python scripts/readout_probe.py MODEL.tflite RUN_DIR [--blocks bn4]

Why: a pattern head re-fitted on a frozen backbone (``train/pattern_refit.py``) leaves the
screening output weight for weight as it was, so if the shipped two-class model's features
already separate the two patterns, the shipped model could carry the read-out at no cost to the
screening decision (issue 17). This measures that before anything is trained: the int8 file's
pooled features (``gap``, and with ``--blocks`` the global average of earlier blocks) are read
from the interpreter's intermediate tensors for the training films of ``RUN_DIR``'s split that
have a pattern (any run on the same split, e.g. a ``--pattern`` run), an L2 logistic regression
is fitted on them with the strength chosen by patient-wise cross-validation on those training
films (``train.pattern_refit.choose_strength``), and the validation films are scored once.
It reads the films as they are (no augmented views), so it is an optimistic probe of the clean
read-out, not a model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier
from train.data import samples_from_split
from train.labels import NO_PATTERN
from train.loading import load_samples
from train.metrics import roc_auc
from train.pattern_refit import choose_strength, fit_readout

#: The test split's pneumonia films, bacterial share (issue 17: 242 bacterial, 148 viral).
TEST_MIX_BACTERIAL = 242 / 390


def _tensor(details: list[dict], layer: str) -> dict:
    """The int8 tensor of ``layer``'s output: the GAP ``Mean`` or a block's batch-norm ``add_1``."""
    wanted = f"/{layer}_1/Mean" if layer == "gap" else f"/{layer}_1/batchnorm/add_1"
    found = [d for d in details if d["name"].endswith(wanted)]
    if not found:
        raise SystemExit(f"no tensor for layer {layer} in the model")
    return found[0]


def int8_features(model_path: str, images: np.ndarray, blocks: tuple[str, ...]) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_path=model_path,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    details = interpreter.get_tensor_details()
    tensors = [_tensor(details, name) for name in ("gap", *blocks)]
    source = interpreter.get_input_details()[0]["index"]
    rows = []
    for image in images:
        interpreter.set_tensor(source, image[None, ..., None].astype(np.uint8))
        interpreter.invoke()
        row = []
        for tensor in tensors:
            scale, zero = tensor["quantization"]
            value = (interpreter.get_tensor(tensor["index"]).astype(np.float64) - zero) * scale
            row.append(value.reshape(-1, value.shape[-1]).mean(axis=0))
        rows.append(np.concatenate(row))
    return np.array(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("run")
    parser.add_argument("--blocks", default="", help="comma-separated earlier blocks to pool too, e.g. bn4")
    args = parser.parse_args(argv)
    blocks = tuple(b for b in args.blocks.split(",") if b)
    classifier = Classifier(args.model)
    spec, threshold = classifier.preprocess, classifier.contract.threshold
    split = json.loads((Path(args.run) / "split.json").read_text(encoding="utf-8"))  # a run still training has one
    train = [s for s in samples_from_split(split, "train") if s.pattern != NO_PATTERN]
    val = [s for s in samples_from_split(split, "validation") if s.pattern != NO_PATTERN]
    train_set, val_set = load_samples(train, spec), load_samples(val, spec)
    x_train = int8_features(args.model, train_set.images, blocks)
    x_val = int8_features(args.model, val_set.images, blocks)
    y_train = np.array([s.pattern for s in train_set.samples])
    y_val = np.array([s.pattern for s in val_set.samples])
    strength, table = choose_strength(x_train, y_train, [s.patient for s in train_set.samples])
    weights, bias = fit_readout(x_train, y_train, strength)  # exactly what refit-pattern would put in the file
    p_viral = 1.0 / (1.0 + np.exp(-(x_val @ weights + bias)))
    called = np.array([classifier.classify(img) >= threshold for img in val_set.images])
    print(f"{args.model}: features {' + '.join(('gap', *blocks))} ({x_train.shape[1]}), "
          f"{len(y_train)} training films, C {strength:g} (CV AUC {max(r['cv_auc'] for r in table):.4f})")
    for name, keep in (("every pneumonia film", np.ones(len(y_val), bool)), ("films called pneumonia", called)):
        y, p = y_val[keep], p_viral[keep]
        sens, spec_ = float(np.mean(p[y == 1] >= 0.5)), float(np.mean(p[y == 0] < 0.5))
        print(f"  {name}: n {len(y)} ({int((y == 0).sum())} bacterial / {int((y == 1).sum())} viral), AUC {roc_auc(y, p):.4f}, "
              f"accuracy {np.mean((p >= 0.5) == y):.4f}, viral found {sens:.3f}, bacterial found {spec_:.3f}, "
              f"at the test split's mix {TEST_MIX_BACTERIAL * spec_ + (1 - TEST_MIX_BACTERIAL) * sens:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
