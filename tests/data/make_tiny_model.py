"""Rebuild ``tests/data/tiny-int8.tflite`` (+ ``.json``): a real export of a tiny trained run.

The edge app's tests load this file so they need no TensorFlow; it goes through the same
``export_tflite`` a clinic model does, so its contract, outputs and quantisation are the real
thing, only small (64 px input, ~2k parameters, ~15 KB). Its predictions mean nothing clinically.

    /work/venv/bin/python tests/data/make_tiny_model.py        # rewrites the committed files

:func:`train_tiny_run` is shared with ``tests/test_export.py`` (loaded by path).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
OUTPUT = HERE / "tiny-int8.tflite"


def settle_batchnorm(run: Path) -> None:
    """Give the checkpoint exact batch-norm statistics and re-choose its threshold.

    A few dozen training steps leave Keras' moving averages (momentum 0.99) mostly at their
    initial values, so the tiny model's inference output barely varies between images (all
    within ~0.001) and no quantised copy could rank them. Real runs take thousands of steps and
    do not need this. Setting momentum to 0 and running the whole training split through the
    model once in training mode stores the split's exact statistics (dropout follows the last
    batch-norm layer, so it does not disturb them). Threshold and AUC in ``metrics.json`` are
    then re-derived with the run's own rule so the folder stays consistent.
    """
    import keras
    import numpy as np

    from edge_app.preprocessing import prepare_file
    from train.config import TrainConfig
    from train.metrics import choose_threshold, roc_auc

    config = TrainConfig.load(run / "config.json")
    split = json.loads((run / "split.json").read_text())
    model = keras.models.load_model(run / "model.keras")

    def load(paths):
        images = np.stack([prepare_file(p, config.preprocess).pixels for p in paths])
        labels = np.array([int(Path(p).parent.name == "PNEUMONIA") for p in paths])
        return images[..., None].astype(np.float32), labels

    train_x, _ = load(split["train"])
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(train_x, training=True)
    for layer in norms:
        layer.momentum = 0.99
    model.save(run / "model.keras")

    val_x, val_y = load(split["validation"])
    scores = model.predict(val_x, verbose=0).reshape(-1)
    threshold, rule = choose_threshold(val_y, scores, "sensitivity", config.sensitivity_target)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(threshold=threshold, threshold_rule=rule, auc=roc_auc(val_y, scores))
    metrics["note"] = "tiny test run: batch-norm statistics re-estimated on the training split"
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def train_tiny_run(workdir: Path) -> Path:
    """Synthetic images -> ``train.fit.fit`` -> settled run folder ``workdir/run`` (~10 s of CPU)."""
    sys.path.insert(0, str(TESTS))
    from conftest import write_dataset

    from train.config import TrainConfig
    from train.fit import fit

    # Films of several sizes, so the input gate's ranges (fitted on these films at export) accept
    # the synthetic films of any size the edge-app tests screen.
    data = write_dataset(workdir / "data", per_class=40, size=(64, 96, 160, 320, 640), patients=20)
    config = TrainConfig(
        data=str(data),
        image_size=64,
        epochs=4,
        batch_size=8,
        learning_rate=3e-3,
        augment=False,
        filters=(4, 8, 8, 8, 8),
        dense_units=8,
        validation_fraction=0.3,
    )
    run = workdir / "run"
    fit(config, run, log=lambda message: None)
    settle_batchnorm(run)
    return run


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export.exporter import export_tflite

    with tempfile.TemporaryDirectory(prefix="pneumoscan-tiny-") as tmp:
        run = train_tiny_run(Path(tmp))
        result = export_tflite(run, quantize="int8", out=OUTPUT, force=True)
    print(f"{OUTPUT} ({OUTPUT.stat().st_size} bytes), version {result.metadata['version']}")


if __name__ == "__main__":
    main()
