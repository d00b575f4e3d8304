"""A weight average over a window of a run's epochs, batch-norm statistics re-estimated (SWA).

Why: stochastic weight averaging (Izmailov et al., 2018) averages the weights the optimiser
passes through late in training; the average sits in a wider, flatter region of the loss, which
is what is asked of a model whose inputs shift (issue 11: framing and markers). The recipe's
weight EMA (momentum 0.99) averages over less than one epoch; a long EMA (0.999, ``ema999`` in
MODEL_CARD.md) lost stress specificity, and it kept the *live* batch-norm statistics beside the
averaged weights. Those statistics belong to weights the average is not: SWA proper recomputes
them for the averaged network, which is what :func:`reestimate_batch_norm` does.

The run must have been trained with ``--keep-epochs`` (every epoch's weights, as validated, in
``RUN/epochs/``). :func:`average_epochs` averages epochs ``first..last`` (every weight; the
batch-norm moving statistics are then replaced), re-estimates the statistics on one pass over
the run's training films through its own training augmentation (the batches the statistics were
gathered on during training), and writes a run folder like any other: ``model.keras``, the
threshold by the run's rule and the whole validation (:func:`train.fit.validate`), so
``pneumoscan-export tflite OUT`` exports it. ``config.json`` records the window
(``extra.weight_average``). The run itself is only read.

Measured on two draws of the shipped recipe (MODEL_CARD.md, ``swa128``): no window beat the best
epoch, and re-estimated statistics read the same as averaged ones. The tool stays because it
answers the question for any run in a minute or two, and ``--keep-epochs`` runs feed
``scripts/epoch_criteria.py`` (which epoch each selection rule would keep).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import DataError, run_scheme, split_samples
from train.fit import (
    CHECKPOINT,
    EPOCH_WEIGHTS,
    EPOCHS_DIR,
    copy_run_records,
    log_validation,
    prepare_run_dir,
    save_validation,
    validate,
)
from train.loading import load_samples


def epoch_files(run: Path, first: int, last: int) -> list[Path]:
    """The kept weights of epochs ``first..last`` (1-based, inclusive) of ``run``."""
    if not 1 <= first <= last:
        raise DataError(f"epochs {first}-{last}: need 1 <= first <= last")
    folder = run / EPOCHS_DIR
    if not folder.is_dir():
        raise DataError(f"{run} kept no epochs (train it with --keep-epochs)")
    files = [folder / EPOCH_WEIGHTS.format(epoch=e) for e in range(first, last + 1)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} (the run kept {len(list(folder.iterdir()))} epochs)")
    return files


def batch_norm_layers(model) -> list:
    """The model's batch-normalisation layers, in order."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def average_weights(model, files: list[Path]) -> None:
    """Set ``model``'s weights to the mean of the weight files ``files`` (same architecture)."""
    total = None
    for path in files:
        model.load_weights(path)
        weights = [np.asarray(w, np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([(t / len(files)).astype(np.float32) for t in total])


def reestimate_batch_norm(model, batches) -> int:
    """Replace every batch-norm layer's moving statistics by the mean of its batch statistics
    over ``batches`` (an iterable of input batches, or of ``(inputs, targets, ...)`` tuples), as
    ``torch.optim.swa_utils.update_bn`` does; returns the number of batches.

    How: Keras updates ``moving = moving * momentum + batch * (1 - momentum)``; with momentum
    ``(k - 1) / k`` at the k-th batch the moving value is the running mean of the k batch values.
    The forward passes run eagerly so each call reads the momentum set for it. Only the moving
    statistics change: no gradient is taken and the layers after the last batch norm (dropout,
    dense) do not affect them.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    count = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            count += 1
            for layer in layers:
                layer.momentum = (count - 1) / count
            model(images, training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    if count == 0:
        raise DataError("no batches to re-estimate the batch-norm statistics on")
    return count


def average_epochs(
    run: str | Path, out: str | Path, first: int, last: int, reestimate: bool = True, log=print
) -> dict:
    """Write run folder ``out``: ``run``'s epochs ``first..last`` averaged, batch-norm statistics
    re-estimated (``reestimate=False``: averaged like the other weights, the ablation that tells
    the two apart), validated as :func:`train.fit.fit` validates; returns its ``metrics.json``."""
    import keras

    from train.heads import patterns_of, training_targets
    from train.model import build_model
    from train.pipeline import make_dataset
    from train.shift import decode_originals

    run, out = Path(run), Path(out)
    files = epoch_files(run, first, last)
    config = TrainConfig.load(run / "config.json")
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    prepare_run_dir(out, overwrite=False)
    copy_run_records(run, out)  # its split and history; validate() replaces the validation records

    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    average_weights(model, files)
    spec, scheme = config.preprocess, run_scheme(config)
    batches = 0
    if reestimate:
        train_set = load_samples(split_samples(split, "train"), spec, skip_bad=config.skip_bad)
        targets = training_targets(train_set.labels, patterns_of(train_set), scheme, config.class_weights)
        batches = reestimate_batch_norm(model, make_dataset(train_set.images, targets, config, training=True))
    how = f"from {batches} augmented training batches" if reestimate else "averaged with the weights"
    log(f"averaged epochs {first}-{last} of {run} ({len(files)} files); batch-norm statistics {how}")
    model.save(out / CHECKPOINT)

    val_set = load_samples(split_samples(split, "validation"), spec, skip_bad=config.skip_bad)
    films = decode_originals([s.path for s in val_set.samples])
    metrics, scores, shifted = validate(model, config, val_set, films, out, log)
    metrics["params"] = int(model.count_params())
    record = {"epochs": [first, last], "batch_norm": "re-estimated" if reestimate else "averaged", "batch_norm_batches": batches}
    metrics["weight_average"] = record
    save_validation(out, metrics, val_set.labels, scores, shifted)
    config.keep_epochs = False
    config.extra["weight_average"] = {"from_run": str(run), **record}
    config.save(out / "config.json")
    log_validation(metrics, f"validation ({len(val_set.labels)} images, epochs {first}-{last} averaged)", log)
    return metrics
