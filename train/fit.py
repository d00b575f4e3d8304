"""One training run: data -> split -> in-memory decode -> fit -> threshold -> metrics -> run folder.

The run folder holds everything needed to audit, evaluate and export the model:
``model.keras`` (best epoch by validation AUC), ``config.json``, ``split.json``, ``history.csv``,
``metrics.json`` (validation metrics, threshold, stress test) and PNG plots.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from train.config import TrainConfig
from train.data import DataError, gather, run_scheme
from train.labels import split_labels
from train.loading import load_samples
from train.selection import MONITORS

CHECKPOINT = "model.keras"
#: With ``--keep-epochs``: every epoch's weights, as validated (train/weight_average.py reads them).
EPOCHS_DIR = "epochs"
EPOCH_WEIGHTS = "epoch-{epoch:02d}.weights.h5"
#: A run folder's records that describe its training and validation, besides the checkpoint,
#: ``config.json`` and ``metrics.json``: a run derived from another without touching the
#: screening head (``refit-pattern``, ``screening-only``) copies them as they are.
RUN_RECORDS = ("split.json", "history.csv", "validation_scores.npy", "shift_logits.npz", "training_curves.png",
               "validation_confusion.png", "validation_roc.png")


def copy_run_records(run: Path, out: Path) -> None:
    """Copy the :data:`RUN_RECORDS` that ``run`` has into ``out``, as they are."""
    for name in RUN_RECORDS:
        if (run / name).exists():
            shutil.copy2(run / name, out / name)


def prepare_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new run into an old one unless asked to."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"run folder {out} already exists and is not empty (use --overwrite)")
    out.mkdir(parents=True, exist_ok=True)


def pick_threshold(config: TrainConfig, labels: np.ndarray, scores: np.ndarray, shifted: dict) -> tuple[float, str]:
    """The operating threshold by ``config.threshold_rule`` (see :mod:`train.metrics`):
    ``scores`` are the clean validation probabilities, ``shifted`` the shift validation logits."""
    from train.metrics import choose_threshold, shift_robust_threshold
    from train.shift import sigmoid

    if config.threshold_rule == "shift-robust":
        sets = {"clean": scores, **{k: sigmoid(v) for k, v in shifted.items() if k != "clean"}}
        return shift_robust_threshold(labels, sets, config.sensitivity_target)
    if config.threshold_rule == "sensitivity":
        return choose_threshold(labels, scores, "sensitivity", config.sensitivity_target)
    raise DataError(f"unknown threshold rule {config.threshold_rule!r}")


def selection_copies(val_set, films: list, config: TrainConfig) -> dict[str, np.ndarray]:
    """The sets the epoch is chosen on, by name: ``"clean"`` (the validation films as loaded) and,
    for each name in ``config.selection_shifts``, the same films with that shift perturbation
    (:mod:`train.shift`), made from ``films``, the films at their original size
    (:func:`train.shift.decode_originals`)."""
    from train.shift import model_inputs

    return {"clean": val_set.images, **{n: model_inputs(films, n, config.preprocess) for n in config.selection_shifts}}


def selection_set(
    copies: dict[str, np.ndarray], targets: np.ndarray, log=print
) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`selection_copies` pooled, with their training ``targets`` (labels, or a pattern
    run's rows) repeated for every copy: what Keras validates each epoch on (checkpoint, early
    stopping, learning-rate plateaus). Their pooled AUC is low for a model whose scores move with
    framing, even when each copy alone ranks well: a healthy film that scores higher when cropped
    then outranks sick films scored uncropped."""
    if len(copies) > 1:
        log(f"epochs chosen on clean validation + {', '.join(list(copies)[1:])} ({len(copies) * len(targets)} images)")
    return np.concatenate(list(copies.values())), np.concatenate([targets] * len(copies))


def validate(model, config: TrainConfig, val_set, films: list, out: Path, log=print) -> tuple[dict, np.ndarray, dict]:
    """Everything a run folder records about ``model`` on its validation films ``val_set``
    (``films``: the same films at their original size): the threshold by the run's rule, the
    clean metrics with intervals and plots (written under ``out``), the shift and stress
    validations and, for a pattern run, the pattern validation. Returns ``(metrics, clean scores,
    shift logits)``; :func:`save_validation` writes them. Used by :func:`fit` and by the runs made
    from a run's weights afterwards (:mod:`train.weight_average`), so both are judged alike."""
    from train.evaluate import keras_logits, keras_predictor, write_evaluation
    from train.heads import keras_pattern_predictor, patterns_of
    from train.shift import shift_logits, shift_report
    from train.stress import stress_report

    spec, scheme = config.preprocess, run_scheme(config)
    predict = keras_predictor(model)
    scores = predict(val_set.images)
    log("shift validation: scoring the validation films re-framed, marked and recompressed")
    shifted = shift_logits(keras_logits(model), films, spec)
    threshold, how = pick_threshold(config, val_set.labels, scores, shifted)
    metrics = write_evaluation(val_set.labels, scores, threshold, out)
    metrics["threshold_rule"] = how
    metrics["shift"] = shift_report(val_set.labels, shifted, threshold)
    metrics["stress"] = stress_report(predict, val_set.images, val_set.labels, threshold, spec)
    if scheme.has_pattern:
        from train.pattern_metrics import format_pattern, pattern_validation

        metrics["pattern"] = pattern_validation(
            keras_pattern_predictor(model), val_set.images, patterns_of(val_set), scores >= threshold, scheme, spec, films
        )
        log(format_pattern(metrics["pattern"]))
    return metrics, scores, shifted


def save_validation(out: Path, metrics: dict, labels: np.ndarray, scores: np.ndarray, shifted: dict) -> None:
    """Write :func:`validate`'s results: ``metrics.json``, ``validation_scores.npy``, ``shift_logits.npz``."""
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    np.save(out / "validation_scores.npy", np.stack([labels, scores]))
    np.savez(out / "shift_logits.npz", labels=labels, **shifted)


def log_validation(metrics: dict, title: str, log=print) -> None:
    """The clean, shift and stress validation in a few lines for the terminal."""
    from train.evaluate import format_metrics
    from train.shift import format_report

    log(format_metrics(metrics, title))
    log("shift validation at the threshold:\n" + format_report(metrics["shift"]))
    s = metrics["stress"]["summary"]
    log(
        f"stress validation: mean AUC {s['mean_auc']:.4f}, min AUC {s['min_auc']:.4f}, "
        f"min specificity {s['min_specificity']:.3f}, min sensitivity {s['min_sensitivity']:.3f}, "
        f"sharpness-stratified AUC {s['sharpness_stratified_auc']:.4f}"
    )


def fit(config: TrainConfig, out: str | Path, overwrite: bool = False, log=print, session=None) -> dict:
    """Train per ``config`` into the run folder ``out``; returns the validation metrics.

    ``session`` (a :class:`train.distributed.Session`) makes this one of several data-parallel
    processes: process 0 writes ``out``; the others train alongside it and return ``{}``.
    """
    import keras
    import tensorflow as tf

    from train.heads import patterns_of, training_targets
    from train.model import build_model, compile_model
    from train.pipeline import class_weights, make_dataset
    from train.plots import plot_history
    from train.schedule import learning_rate_callbacks
    from train.shift import decode_originals

    class EpochTimer(keras.callbacks.Callback):
        """Seconds per epoch, for the run's report and the benchmark."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    out = Path(out) if session is None else session.run_dir(out)
    started = time.perf_counter()
    train_samples, val_samples, data_report = gather(config, log)
    scheme = run_scheme(config)
    if config.mixup > 0 and scheme.has_pattern:
        raise DataError("--mixup blends one screening label; it is not defined for a pattern run")
    prepare_run_dir(out, overwrite)
    spec = config.preprocess
    (out / "split.json").write_text(
        json.dumps(
            {
                "train": [str(s.path) for s in train_samples],
                "validation": [str(s.path) for s in val_samples],
                **split_labels(train_samples, val_samples),
            },
            indent=1,
        )
        + "\n"
    )

    t0 = time.perf_counter()
    train_set = load_samples(train_samples, spec, skip_bad=config.skip_bad)
    val_set = load_samples(val_samples, spec, skip_bad=config.skip_bad)
    data_report["skipped_bad"] = [f"{p}: {r}" for p, r in train_set.bad + val_set.bad]
    data_report["decode_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"decoded {len(train_set.images) + len(val_set.images)} images at {spec.id} in {data_report['decode_seconds']} s")
    config.extra["data"] = data_report
    config.save(out / "config.json")

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(config)
    if config.architecture == "efficientnet-lite0":
        from train.efficientnet_lite import load_imagenet

        config.extra["pretrained"] = load_imagenet(model)
        config.save(out / "config.json")
        log(f"backbone started from {config.extra['pretrained']['weights']}")
    if config.init_from:
        from train.warm_start import warm_start

        source = Path(config.init_from)
        copied = warm_start(model, source / CHECKPOINT if source.is_dir() else source)
        config.extra["init_from"] = {"layers": copied}  # the source itself is config.init_from
        config.save(out / "config.json")
        log(f"backbone started from {config.init_from}: {len(copied)} layers ({', '.join(copied)})")
    compile_model(model, config)
    timer = EpochTimer()
    # With weight averaging, validation and the checkpoint see the averaged weights.
    averaging = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum > 0 else []
    monitor = MONITORS[config.select_by]
    callbacks = averaging + [
        keras.callbacks.ModelCheckpoint(out / CHECKPOINT, monitor=monitor, mode="max", save_best_only=True),
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=config.early_stopping_patience, restore_best_weights=True
        ),
        *learning_rate_callbacks(config),
        keras.callbacks.CSVLogger(out / "history.csv"),
        timer,
    ]
    if config.keep_epochs:
        (out / EPOCHS_DIR).mkdir(exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(out / EPOCHS_DIR / EPOCH_WEIGHTS, save_weights_only=True))
    train_targets = training_targets(train_set.labels, patterns_of(train_set), scheme, config.class_weights)
    val_targets = training_targets(val_set.labels, patterns_of(val_set), scheme, config.class_weights)
    weights = class_weights(train_set.labels) if config.class_weights and not scheme.has_pattern else None
    # With mixup the dataset carries the (blended) class weights itself (train/pipeline.py).
    train_data = make_dataset(train_set.images, train_targets, config, training=True, weights=weights)
    # Decoded once: the selection set and the shift validation after training both start from them.
    films = decode_originals([s.path for s in val_set.samples])
    copies = selection_copies(val_set, films, config)
    val_data = make_dataset(*selection_set(copies, val_targets, log), config, training=False)
    if config.select_by == "shift-specificity":
        from train.selection import shift_specificity_callback

        # After the EMA swap, before the checkpoint, early stopping and CSV logger that read it.
        callbacks.insert(len(averaging), shift_specificity_callback(copies, val_set.labels, config.sensitivity_target))
    if session is not None:
        train_data, val_data = session.prepare(model, train_data, val_data, config)
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        # A pattern run's targets carry their own weights (train/heads.py).
        class_weight=None if config.mixup > 0 else weights,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if session is not None:
        session.finish()  # every process has saved its checkpoint; process 0 goes on alone
        if not session.is_chief:
            return {}
    plot_history(history.history, out / "training_curves.png")

    best = keras.models.load_model(out / CHECKPOINT)
    metrics, scores, shifted = validate(best, config, val_set, films, out, log)
    metrics["params"] = int(best.count_params())
    metrics["epochs_run"] = len(timer.seconds)
    metrics["best_epoch"] = int(np.argmax(history.history[monitor])) + 1  # the first best, as Keras keeps it
    metrics["seconds_per_epoch"] = round(float(np.median(timer.seconds)), 1) if timer.seconds else None
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    save_validation(out, metrics, val_set.labels, scores, shifted)
    log_validation(metrics, f"validation ({len(val_set.labels)} images, best epoch {metrics['best_epoch']})", log)
    log(
        f"{metrics['params']:,} parameters, {metrics['epochs_run']} epochs, "
        f"{metrics['seconds_per_epoch']} s/epoch, {metrics['wall_seconds']} s total, "
        f"peak RSS {metrics['peak_rss_mb']} MB -> {out}"
    )
    return metrics
