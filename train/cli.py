"""``pneumoscan-train``: fit a model from a labelled folder, or evaluate one on another."""

from __future__ import annotations

import json
import os
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from train.config import ARCHITECTURES, TrainConfig
from train.data import DataError
from train.distributed import ENV_ADDRESSES, ENV_NUM_PROCESSES, ENV_PROCESS_ID, Cluster, use_jax_backend

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

_defaults = TrainConfig()


@contextmanager
def _one_line_errors():
    """Bad input (a missing or malformed run, model or data folder) ends a command with one line
    and exit code 2, never a traceback."""
    try:
        yield
    except (DataError, ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("fit")
def fit_command(
    data: Path = typer.Argument(..., help="ROOT with train/<class folders>, a folder of class folders (NORMAL/, PNEUMONIA/, ...), or a CSV of path,label[,patient]"),
    out: Path = typer.Option(..., "--out", help="Run folder to create"),
    pattern: bool = typer.Option(False, "--pattern", help="Kermany layout: also learn bacterial vs viral from the PNEUMONIA file names (a pattern head beside the screening head)"),
    negative_class: str = typer.Option("", "--negative-class", help="The class that is a negative screen (default: the one named NORMAL)"),
    epochs: int = typer.Option(_defaults.epochs, help="Maximum epochs (early stopping may end sooner)"),
    image_size: int = typer.Option(_defaults.image_size, "--image-size", help="Square input size in pixels"),
    batch_size: int = typer.Option(_defaults.batch_size, "--batch-size"),
    learning_rate: float = typer.Option(_defaults.learning_rate, "--learning-rate"),
    lr_schedule: str = typer.Option(_defaults.lr_schedule, "--lr-schedule", help="plateau: cut the rate when val AUC stalls; cosine: decay it over --epochs to 1%"),
    warmup_epochs: int = typer.Option(_defaults.warmup_epochs, "--warmup-epochs", min=0, help="Raise the rate linearly, step by step, over the first N epochs (for a pretrained --architecture)"),
    filters: str = typer.Option(",".join(map(str, _defaults.filters)), help="Filters of the 5 conv blocks, comma-separated"),
    architecture: str = typer.Option(_defaults.architecture, help="Backbone: cnn (the 5 conv blocks, from scratch) or efficientnet-lite0 (started from ImageNet; --filters unused)"),
    dense_units: int = typer.Option(_defaults.dense_units, "--dense-units"),
    dropout: float = typer.Option(_defaults.dropout),
    l2: float = typer.Option(_defaults.l2, help="L2 weight decay on conv and dense kernels"),
    label_smoothing: float = typer.Option(_defaults.label_smoothing, "--label-smoothing"),
    normalization: str = typer.Option(_defaults.normalization, help="Intensity normalisation: percentile, central-percentile (percentiles read from the central half), equalize or none"),
    blur_probability: float = typer.Option(_defaults.blur_probability, "--blur-probability", help="Share of training images blurred by augmentation"),
    noise_probability: float = typer.Option(_defaults.noise_probability, "--noise-probability", help="Share of training images given Gaussian sensor noise (sigma 0-12 grey levels)"),
    sharpen_probability: float = typer.Option(_defaults.sharpen_probability, "--sharpen-probability", help="Share of training images sharpened by an unsharp mask (edge enhancement)"),
    augment: bool = typer.Option(True, "--augment/--no-augment"),
    rotation: float = typer.Option(_defaults.rotation, help="Max rotation, fraction of a full turn"),
    zoom: float = typer.Option(_defaults.zoom, help="Max zoom in/out fraction"),
    shift: float = typer.Option(_defaults.shift, help="Max shift, fraction of the image side"),
    contrast: float = typer.Option(_defaults.contrast, help="Max contrast change factor"),
    crop_area_min: float = typer.Option(_defaults.crop_area_min, "--crop-area-min", help="Framing augmentation: smallest crop, share of the film's area (1 with --crop-area-max 1: off)"),
    crop_area_max: float = typer.Option(_defaults.crop_area_max, "--crop-area-max", help="Framing augmentation: largest zoom-out, share of the film's area (> 1 pads)"),
    aspect_jitter: float = typer.Option(_defaults.aspect_jitter, "--aspect-jitter", help="Framing augmentation: largest width/height ratio change, either way"),
    marker_probability: float = typer.Option(_defaults.marker_probability, "--marker-probability", help="Share of training images given a synthetic R/L marker (text: half as many)"),
    band_probability: float = typer.Option(_defaults.band_probability, "--band-probability", help="Share of training images given black collimation bands"),
    ema_momentum: float = typer.Option(_defaults.ema_momentum, "--ema", help="Weight EMA momentum (0: off), e.g. 0.99"),
    keep_epochs: bool = typer.Option(False, "--keep-epochs", help="Keep every epoch's weights in RUN/epochs/ (for `pneumoscan-train average`)"),
    consistency: float = typer.Option(_defaults.consistency, "--consistency", help="Weight of the paired-view logit consistency loss (0: off)"),
    mixup: float = typer.Option(_defaults.mixup, "--mixup", min=0.0, help="Mixup: blend training films and labels with Beta(a, a) weights, e.g. 0.2 (0: off; screening runs only)"),
    select_on: str = typer.Option("", "--select-on", help="Shift perturbations (comma-separated, see train/shift.py) added to the validation the epoch is chosen on"),
    select_by: str = typer.Option(_defaults.select_by, "--select-by", help="auc: keep the epoch with the best pooled AUC; shift-specificity: the best worst-copy specificity at the shift-robust threshold (needs --select-on)"),
    class_weights: bool = typer.Option(True, "--class-weights/--no-class-weights"),
    validation_fraction: float = typer.Option(_defaults.validation_fraction, "--validation-fraction"),
    split_order: str = typer.Option(_defaults.split_order, "--split-order", help="random: patients drawn with --seed; earliest: lowest-numbered patients per series (a shift in time)"),
    use_kaggle_val: bool = typer.Option(True, "--use-kaggle-val/--ignore-kaggle-val", help="Add ROOT/val (16 images) to training"),
    patience: int = typer.Option(_defaults.early_stopping_patience, help="Early-stopping patience in epochs"),
    sensitivity_target: float = typer.Option(_defaults.sensitivity_target, "--sensitivity-target", help="Threshold rule: highest specificity keeping this validation sensitivity"),
    threshold_rule: str = typer.Option(_defaults.threshold_rule, "--threshold-rule", help="sensitivity: the target on clean validation; shift-robust: on clean and every shift perturbation"),
    seed: int = typer.Option(_defaults.seed),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images instead of stopping"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Reuse a run folder that is not empty"),
    limit_per_class: int = typer.Option(0, "--limit-per-class", help="Use only the first N files of each class (0: all); for smoke runs"),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start the convolutional backbone from this run's weights (same --filters); the head starts fresh"),
    coordinator: Optional[str] = typer.Option(None, "--coordinator", envvar=ENV_ADDRESSES, help="Multi-process: HOST:PORT of process 0 (PORT+1 must be free too)"),
    num_processes: Optional[int] = typer.Option(None, "--num-processes", envvar=ENV_NUM_PROCESSES, help="Multi-process: how many processes train together (data-parallel, JAX backend)"),
    process_id: Optional[int] = typer.Option(None, "--process-id", envvar=ENV_PROCESS_ID, help="Multi-process: this process's number, 0 on the coordinator"),
    worker_out: Optional[Path] = typer.Option(None, "--worker-out", help="Multi-process: where a process other than 0 keeps its own checkpoint (default: a temporary folder, deleted)"),
) -> None:
    """Train the CNN and write a run folder (checkpoint, config, split, history, metrics, plots).

    With --num-processes N (N >= 2) start the same command once per process, each with its own
    --process-id: they train one model data-parallel and process 0 writes the run folder.
    See docs/distributed-training.md.
    """
    log = lambda m: typer.echo(m, err=True)  # noqa: E731
    session = None
    try:
        cluster = Cluster.from_options(coordinator, num_processes, process_id)
        if cluster is not None:
            cluster.check_batch_size(batch_size)
            use_jax_backend(log)  # before train.fit imports Keras
            log = _prefixed(f"[process {cluster.process_id}] ")
        config = TrainConfig(
            data=str(data), epochs=epochs, image_size=image_size, batch_size=batch_size,
            learning_rate=learning_rate, lr_schedule=lr_schedule, warmup_epochs=warmup_epochs, filters=tuple(int(f) for f in filters.split(",")), architecture=architecture,
            dense_units=dense_units, dropout=dropout, l2=l2, label_smoothing=label_smoothing,
            normalization=normalization, blur_probability=blur_probability, noise_probability=noise_probability, sharpen_probability=sharpen_probability, augment=augment,
            rotation=rotation, zoom=zoom, shift=shift, contrast=contrast,
            crop_area_min=crop_area_min, crop_area_max=crop_area_max, aspect_jitter=aspect_jitter,
            marker_probability=marker_probability, band_probability=band_probability, ema_momentum=ema_momentum, keep_epochs=keep_epochs,
            consistency=consistency, mixup=mixup, selection_shifts=tuple(n for n in select_on.split(",") if n), select_by=select_by,
            class_weights=class_weights, validation_fraction=validation_fraction, split_order=split_order,
            use_kaggle_val=use_kaggle_val, early_stopping_patience=patience,
            sensitivity_target=sensitivity_target, threshold_rule=threshold_rule, seed=seed, skip_bad=skip_bad,
            pattern=pattern, negative_class=negative_class,
            limit_per_class=limit_per_class, init_from=str(init_from or ""),
        )
        config.preprocess  # validates size and normalisation before any work
        from train.metrics import THRESHOLD_RULES

        from train.shift import PERTURBATIONS

        unknown = [n for n in config.selection_shifts if n not in PERTURBATIONS]
        if unknown:
            raise DataError(f"--select-on: unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(PERTURBATIONS)}")
        from train.schedule import LR_SCHEDULES

        if config.lr_schedule not in LR_SCHEDULES:
            raise DataError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
        from train.selection import SELECTION_RULES

        if config.select_by not in SELECTION_RULES:
            raise DataError(f"--select-by must be one of {', '.join(SELECTION_RULES)}, got {select_by!r}")
        if config.select_by == "shift-specificity" and not config.selection_shifts:
            raise DataError("--select-by shift-specificity needs --select-on: the copies it takes the worst specificity over")
        if config.select_by == "shift-specificity" and cluster is not None:
            raise DataError("--select-by shift-specificity runs on one process only (it scores the whole selection set each epoch)")
        if config.threshold_rule not in THRESHOLD_RULES:
            raise DataError(f"--threshold-rule must be one of {', '.join(THRESHOLD_RULES)}, got {threshold_rule!r}")
        if config.architecture not in ARCHITECTURES:
            raise DataError(f"--architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")
        if len(config.filters) != 5:
            raise DataError(f"--filters needs 5 numbers (one per block), got {filters!r}")
        config.extra["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
        if cluster is not None:
            from train.distributed import start

            session = start(cluster, worker_out, log=log)
            session.check_same_settings(config)
            config.extra["distributed"] = {"num_processes": cluster.num_processes}
        from train.fit import fit

        fit(config, out, overwrite=overwrite, log=log, session=session)
    except (DataError, ValueError) as exc:
        log(f"error: {exc}")
        if session is not None:
            session.abort(str(exc), code=2)  # the other processes stop too, saying why
        raise typer.Exit(2)
    except Exception:
        if session is None:
            raise
        traceback.print_exc()
        session.abort("crashed (its traceback is in its log)", code=1)
    finally:
        if session is not None:
            session.close()


def _prefixed(prefix: str):
    """Log lines tagged with the process, so several processes' output can be told apart."""
    return lambda message: typer.echo(prefix + message.replace("\n", "\n" + prefix), err=True)


@app.command("evaluate")
def evaluate_command(
    model: Path = typer.Argument(..., help="A .keras checkpoint (with its run folder) or an exported .tflite"),
    data: Path = typer.Argument(..., help="Labelled folder: ROOT (uses --split) or a folder of class folders (NORMAL/, PNEUMONIA/, ...), or a path,label CSV"),
    threshold: Optional[float] = typer.Option(None, help="Override the model's stored threshold"),
    split: str = typer.Option("test", help="Sub-folder of DATA to use when it has one"),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and plots"),
    skip_bad: bool = typer.Option(False, "--skip-bad"),
) -> None:
    """Score a model on a labelled folder: AUC, accuracy, sensitivity, specificity, plots, JSON."""
    from train.evaluate import evaluate, format_metrics

    with _one_line_errors():
        metrics = evaluate(model, data, out, threshold, split=split, skip_bad=skip_bad)
    typer.echo(format_metrics(metrics, f"{model} on {data}"))
    if "pattern" in metrics:
        from train.pattern_metrics import format_pattern

        typer.echo(format_pattern(metrics["pattern"]))
    typer.echo(json.dumps({k: metrics[k] for k in ("auc", "accuracy", "sensitivity", "specificity")}))


def main() -> None:
    app()


@app.command("refit-pattern")
def refit_pattern_command(
    run: Path = typer.Argument(..., help="A run folder trained with --pattern (only read)"),
    out: Path = typer.Option(..., "--out", help="The new run folder to write"),
    folds: int = typer.Option(5, "--folds", help="Patient-wise cross-validation folds on the training films"),
) -> None:
    """Re-fit the pattern head as a linear read-out of the frozen features; export OUT as any run.

    A regularised logistic regression; the screening head is untouched. train/pattern_refit.py
    says why.
    """
    from train.pattern_refit import refit_pattern_head

    with _one_line_errors():
        refit_pattern_head(run, out, folds=folds, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"re-fitted pattern head -> {out}")


@app.command("screening-only")
def screening_only_command(
    run: Path = typer.Argument(..., help="A run folder trained with --pattern (only read)"),
    out: Path = typer.Option(..., "--out", help="The new run folder to write"),
) -> None:
    """Drop a pattern run's pattern head, leaving a two-class run; export OUT as any run.

    The same network and screening head as before (train/screening_only.py says why).
    """
    from train.screening_only import screening_only

    with _one_line_errors():
        screening_only(run, out)
    typer.echo(f"screening head only -> {out}")


@app.command("graft-pattern")
def graft_pattern_command(
    screening_run: Path = typer.Argument(..., help="A two-class screening run (only read)"),
    pattern_run: Path = typer.Argument(..., help="A two-class run trained on the positive films only: bacterial vs viral (only read)"),
    out: Path = typer.Option(..., "--out", help="The new run folder to write"),
) -> None:
    """Add a pattern network beside a screening run's network; export OUT as any run.

    The screening decision stays the screening run's, film for film (train/pattern_graft.py says
    why).
    """
    from train.pattern_graft import graft_pattern

    with _one_line_errors():
        graft_pattern(screening_run, pattern_run, out, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"grafted pattern network -> {out}")


@app.command("average")
def average_command(
    run: Path = typer.Argument(..., help="A run folder trained with --keep-epochs (only read)"),
    out: Path = typer.Option(..., "--out", help="The new run folder to write"),
    epochs: str = typer.Option(..., "--epochs", help="The window to average, FIRST-LAST (1-based, inclusive), e.g. 17-32"),
    reestimate: bool = typer.Option(True, "--reestimate-batch-norm/--average-batch-norm", help="Batch-norm statistics re-estimated on the training batches (SWA), or averaged like the weights (ablation)"),
) -> None:
    """Average a run's kept epochs FIRST-LAST (SWA); export OUT as any run.

    The batch-norm statistics are re-estimated and the average is validated as `fit` validates
    (train/weight_average.py says why).
    """
    from train.weight_average import average_epochs

    with _one_line_errors():
        try:
            first, last = (int(e) for e in epochs.split("-"))
        except ValueError:
            raise DataError(f"--epochs must be FIRST-LAST, e.g. 17-32, got {epochs!r}") from None
        average_epochs(run, out, first, last, reestimate, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"epochs {epochs} averaged -> {out}")


@app.command("shift")
def shift_command(
    model: Path = typer.Argument(..., help="A run folder / its model.keras, or an exported .tflite"),
    data: Optional[Path] = typer.Argument(None, help="For a .tflite: the training ROOT its validation split is rebuilt from"),
    split_order: str = typer.Option("earliest", "--split-order", help="For a .tflite: the split order it was validated with"),
    threshold_rule: Optional[str] = typer.Option(None, "--threshold-rule", help="Re-pick the threshold: sensitivity or shift-robust (default: the stored one)"),
    sensitivity_target: float = typer.Option(0.95, "--sensitivity-target"),
    update: bool = typer.Option(False, "--update", help="Write the threshold and shift report into the run's metrics.json"),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the report as JSON here"),
    logits: Optional[Path] = typer.Option(None, "--logits", help="Also save every set's logits here (.npz)"),
) -> None:
    """Shift validation: the validation films re-framed, marked and recompressed, then scored.

    Through the device's preprocessing: AUC, sensitivity and specificity at the threshold, and
    the decision flip rates.
    """
    from train.evaluate import shift_validate
    from train.shift import format_report

    with _one_line_errors():
        report = shift_validate(
            model, data, split_order, rule=threshold_rule, target=sensitivity_target, update=update, logits_out=logits,
            log=lambda m: typer.echo(m, err=True),
        )
    typer.echo(f"threshold {report['summary']['threshold']:.4f}: {report['summary']['threshold_rule']}")
    typer.echo(format_report(report))
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n")
