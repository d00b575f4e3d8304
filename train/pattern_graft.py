"""Graft a pattern network of its own onto a two-class screening run: two networks, one file.

Why: in a model trained with ``--pattern`` (``train/heads.py``) one backbone learns features for
both heads, and its screening is not the default model's: retraining the network to add the
read-out moves every screening figure a little (MODEL_CARD.md, *Bacterial / viral pattern*). A
graft keeps a screening run's network, threshold and records untouched and adds, beside it, a
second network trained on the positive films alone to tell one pattern from the other. Its
screening decision is therefore the screening run's own, film for film (checked below, and by the
export's parity with the same calibration films); only the pattern read-out is new. The price is
two networks in the file: about twice the size and the inference time of one.

The two runs:

- ``screening_run``: a two-class run (e.g. ``runs/shipped`` from ``scripts/make-model.sh``).
- ``pattern_run``: a two-class run trained on the positive films only, its classes being the two
  patterns, negative first (``pneumoscan-train fit LABELS.csv --negative-class bacterial``, so its
  logit is the log-odds of the second pattern, as the pattern head's is). It must preprocess films
  exactly as the screening run does (same image size and normalisation): the file has one input.

Pattern labels for the validation: the screening run's validation films are NORMAL / PNEUMONIA;
only the Kermany file names say which pattern a PNEUMONIA film has (``personN_bacteria_M``), so a
graft needs the Kermany patterns (``bacterial``, ``viral``). A validation film the pattern run
trained on (matched by file name: Kermany names are unique) would flatter the read-out, so it is
left out of the pattern validation and the pattern parity; their number is recorded.

The output is a run folder like any other, exported with ``pneumoscan-export tflite OUT``; its
``config.json`` records both sources (``extra.pattern_graft``) and the contract says how the
pattern head was made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import DataError, samples_from_split
from train.fit import CHECKPOINT, copy_run_records, prepare_run_dir
from train.labels import KERMANY_PATTERNS, KIND_BINARY, NO_PATTERN, LabelScheme, kermany_pattern, resolve_scheme
from train.loading import load_samples

#: The name of the grafted pattern network inside the Keras model (its layers live under it, so
#: they never collide with the screening network's).
PATTERN_NETWORK = "pattern_network"


def _two_class(run: Path, what: str) -> tuple[TrainConfig, LabelScheme]:
    config = TrainConfig.load(run / "config.json")
    scheme = LabelScheme.from_dict(config.extra.get("labels"))
    if scheme.kind != KIND_BINARY:
        raise DataError(f"{run} is not a two-class run ({scheme.kind}); the {what} must be one")
    return config, scheme


def validation_patterns(validation_paths: list[str], labels: list[int], trained_on: set[str]) -> tuple[list[int], int]:
    """The pattern label of each screening validation film (:data:`NO_PATTERN` for a negative film
    and for a film the pattern network trained on) and how many were left out for that reason."""
    patterns, left_out = [], 0
    for path, label in zip(validation_paths, labels):
        pattern = kermany_pattern(path) if label == 1 else NO_PATTERN
        if pattern != NO_PATTERN and Path(path).name in trained_on:
            pattern, left_out = NO_PATTERN, left_out + 1
        patterns.append(pattern)
    return patterns, left_out


def grafted_model(screening, pattern):
    """The screening model with ``pattern``'s network beside it: output ``heads`` =
    [P(positive), P(second pattern)], the layout a ``--pattern`` run's checkpoint has
    (``train/heads.py``), so export and the device read it the same way. Every screening layer is
    the same object, so the screening output does not move."""
    import keras
    from keras import layers

    from train.heads import HEADS_LAYER, PATTERN_LOGIT_LAYER, PATTERN_PROBABILITY_LAYER
    from train.model import LOGIT_LAYER, PROBABILITY_LAYER

    network = keras.Model(pattern.input, pattern.get_layer(LOGIT_LAYER).output, name=PATTERN_NETWORK)
    logit = layers.Identity(name=PATTERN_LOGIT_LAYER)(network(screening.input))
    probability = layers.Activation("sigmoid", name=PATTERN_PROBABILITY_LAYER)(logit)
    heads = layers.Concatenate(name=HEADS_LAYER)([screening.get_layer(PROBABILITY_LAYER).output, probability])
    return keras.Model(screening.input, heads, name="pneumoscan_cnn_pattern_graft")


def graft_pattern(screening_run: str | Path, pattern_run: str | Path, out: str | Path, *, log=print) -> dict:
    """Write run folder ``out``: ``screening_run`` with ``pattern_run``'s network as its pattern
    head (module docstring); returns the new ``metrics.json``. Both runs are only read."""
    import keras

    from train.evaluate import keras_predictor
    from train.heads import keras_pattern_predictor
    from train.pattern_metrics import format_pattern, pattern_validation
    from train.shift import decode_originals

    screening_run, pattern_run, out = Path(screening_run), Path(pattern_run), Path(out)
    config, _ = _two_class(screening_run, "screening run")
    pattern_config, pattern_scheme = _two_class(pattern_run, "pattern run")
    if tuple(pattern_scheme.classes) != KERMANY_PATTERNS:
        raise DataError(
            f"{pattern_run} tells {list(pattern_scheme.classes)} apart; a graft needs the Kermany patterns "
            f"{list(KERMANY_PATTERNS)} in that order (--negative-class {KERMANY_PATTERNS[0]}), the only ones the "
            "screening run's validation films name"
        )
    if pattern_config.preprocess != config.preprocess:
        raise DataError(
            f"the two runs preprocess films differently ({config.preprocess.id} vs {pattern_config.preprocess.id}); "
            "the grafted file has one input, so train the pattern run with the screening run's image size and normalisation"
        )
    split = json.loads((screening_run / "split.json").read_text(encoding="utf-8"))
    pattern_split = json.loads((pattern_run / "split.json").read_text(encoding="utf-8"))
    metrics = json.loads((screening_run / "metrics.json").read_text(encoding="utf-8"))
    if samples_from_split(split, "validation") is None:
        raise DataError(f"{screening_run / 'split.json'} records no labels (a run older than the pattern head)")
    patterns, left_out = validation_patterns(
        split["validation"], split["labels"]["validation"], {Path(p).name for p in pattern_split["train"]}
    )
    split = {**split, "patterns": {**split.get("patterns", {}), "validation": patterns}}
    val_samples = samples_from_split(split, "validation")
    prepare_run_dir(out, overwrite=False)

    screening = keras.models.load_model(screening_run / CHECKPOINT, compile=False)
    pattern = keras.models.load_model(pattern_run / CHECKPOINT, compile=False)
    grafted = grafted_model(screening, pattern)
    val_set = load_samples(val_samples, config.preprocess)
    scores = keras_predictor(grafted)(val_set.images)
    if not np.allclose(scores, keras_predictor(screening)(val_set.images), atol=1e-6):
        raise RuntimeError("the screening output moved while the pattern network was added")
    if not np.allclose(keras_pattern_predictor(grafted)(val_set.images)[:, 1], keras_predictor(pattern)(val_set.images), atol=1e-6):
        raise RuntimeError("the grafted pattern output differs from the pattern run's own")

    scheme = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)  # what a --pattern run records
    val_patterns = np.array([s.pattern for s in val_set.samples])
    films = decode_originals([s.path for s in val_set.samples])
    metrics["pattern"] = pattern_validation(
        keras_pattern_predictor(grafted), val_set.images, val_patterns, scores >= metrics["threshold"], scheme,
        config.preprocess, films,
    )
    metrics["params"] = int(grafted.count_params())
    log(f"pattern validation on {int((val_patterns != NO_PATTERN).sum())} films "
        f"({left_out} left out: the pattern run trained on them)")
    log(format_pattern(metrics["pattern"]))

    grafted.save(out / CHECKPOINT)
    copy_run_records(screening_run, out)
    (out / "split.json").write_text(json.dumps(split) + "\n", encoding="utf-8")
    config.pattern = True
    config.extra["labels"] = scheme.to_dict()
    config.extra["pattern_graft"] = {
        "screening_run": str(screening_run),
        "pattern_run": str(pattern_run),
        "head": f"a network of its own ({int(pattern.count_params())} parameters), trained on the positive films only",
        "pattern_run_data": pattern_config.extra.get("data", {}).get("fingerprint"),
        "validation_films_left_out": left_out,
    }
    config.save(out / "config.json")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
