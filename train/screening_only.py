"""Cut a pattern run down to its screening head: the same network, one output, a two-class run.

Why: a run trained with ``--pattern`` learns its features for both heads, and the screening it
ends with can be worth shipping on its own even when its pattern read-out is not. The case that
asked for this: ``xlpattern160`` is the most shift-robust screening run (MODEL_CARD.md), but its
int8 file fails the pattern parity gate, so it cannot be exported with its pattern head. Without
the head, its int8 file is held only to the screening parity it passes.

Every layer up to ``probability`` is the same object with the same weights, so the screening
scores, threshold, shift and stress records of the run are still true and are copied, not
recomputed; :func:`screening_only` checks that the screening output did not move. The result is a
run folder like any other (``pneumoscan-export tflite OUT``); its ``config.json`` records where it
came from (``extra.screening_only``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import DataError, samples_from_split
from train.fit import CHECKPOINT, copy_run_records, prepare_run_dir
from train.labels import KIND_BINARY, LabelScheme
from train.loading import load_samples
from train.model import PROBABILITY_LAYER


def screening_only(run: str | Path, out: str | Path) -> dict:
    """Write run folder ``out``: ``run``'s network ending at its screening probability; returns
    the new ``metrics.json`` (the run's, without its ``pattern`` section). ``run`` is only read."""
    import keras

    from train.evaluate import keras_predictor

    run, out = Path(run), Path(out)
    config = TrainConfig.load(run / "config.json")
    scheme = LabelScheme.from_dict(config.extra.get("labels"))
    if not scheme.has_pattern:
        raise DataError(f"{run} has no pattern head (it is already a screening-only run)")
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    val_samples = samples_from_split(split, "validation")
    if val_samples is None:
        raise DataError(f"{run / 'split.json'} records no labels (a run older than the pattern head)")
    prepare_run_dir(out, overwrite=False)
    model = keras.models.load_model(run / CHECKPOINT, compile=False)
    screening = keras.Model(model.input, model.get_layer(PROBABILITY_LAYER).output, name="pneumoscan_cnn")

    images = load_samples(val_samples, config.preprocess).images
    if not np.allclose(keras_predictor(screening)(images), keras_predictor(model)(images), atol=1e-6):
        raise RuntimeError("the screening output moved while the pattern head was removed")

    screening.save(out / CHECKPOINT)
    copy_run_records(run, out)
    config.pattern = False
    # Two classes, the screening head's own: what the exported contract and the device read.
    config.extra["labels"] = LabelScheme(KIND_BINARY, scheme.screening, scheme.screening).to_dict()
    config.extra["screening_only"] = {"from_run": str(run), "dropped": "the pattern head"}
    metrics.pop("pattern", None)
    metrics["params"] = int(screening.count_params())
    config.save(out / "config.json")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
