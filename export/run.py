"""The run folder an export starts from, checked before any slow work is done.

An export is only as trustworthy as the folder it reads: a checkpoint whose ``config.json``
describes another model would ship with the wrong preprocessing, and a missing ``metrics.json``
leaves no validated threshold. Each such problem is an :class:`ExportError` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_app.preprocessing import PreprocessSpec
from export.errors import ExportError
from train.config import TrainConfig
from train.data import DataError, Sample
from train.data import split_samples as train_split_samples
from train.fit import CHECKPOINT
from train.labels import LabelScheme


@dataclass(frozen=True)
class Run:
    """A training run folder whose files have been found and parsed (the model is not loaded)."""

    folder: Path
    checkpoint: Path
    config: TrainConfig
    metrics: dict
    split: dict

    @property
    def spec(self) -> PreprocessSpec:
        return self.config.preprocess

    @property
    def threshold(self) -> float:
        return float(self.metrics["threshold"])

    @property
    def threshold_rule(self) -> str:
        return str(self.metrics.get("threshold_rule", "chosen on validation by pneumoscan-train"))

    @property
    def scheme(self) -> LabelScheme:
        """The run's classes and heads (binary NORMAL/PNEUMONIA for a run older than schemes)."""
        return LabelScheme.from_dict(self.config.extra.get("labels"))

    @property
    def data_fingerprint(self) -> str | None:
        return self.config.extra.get("data", {}).get("fingerprint")


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ExportError(f"{path} is missing: {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path} should hold a JSON object")
    return data


def locate_run(run_or_model: str | Path) -> Run:
    """Resolve a run folder or its ``model.keras`` and read its config, metrics and split."""
    path = Path(run_or_model)
    if not path.exists():
        raise ExportError(f"not found: {path}")
    if path.is_dir():
        folder, checkpoint = path, path / CHECKPOINT
        if not checkpoint.is_file():
            raise ExportError(f"run folder {folder} has no {CHECKPOINT} checkpoint (did training finish?)")
    elif path.suffix == ".keras":
        folder, checkpoint = path.parent, path
    else:
        raise ExportError(f"{path}: expected a run folder or its {CHECKPOINT} checkpoint")

    config_data = _read_json(folder / "config.json", "it says how the model's images were preprocessed")
    try:
        config = TrainConfig.from_dict(config_data)
        config.preprocess  # validates image size and normalisation
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{folder / 'config.json'} is invalid: {exc}") from None
    metrics = _read_json(folder / "metrics.json", "it holds the validated decision threshold")
    threshold = metrics.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ExportError(f"{folder / 'metrics.json'} has no threshold inside (0, 1): {threshold!r}")
    split = _read_json(folder / "split.json", "it lists the validation images parity is proven on")
    for key in ("train", "validation"):
        if not isinstance(split.get(key), list) or not split[key]:
            raise ExportError(f"{folder / 'split.json'} has no {key!r} image list")
    return Run(folder=folder, checkpoint=checkpoint, config=config, metrics=metrics, split=split)


def check_model(model, run: Run) -> None:
    """Refuse a checkpoint that contradicts its ``config.json`` or lacks the layers export needs."""
    shape = tuple(model.input_shape)
    size = run.config.image_size
    if len(shape) != 4 or shape[1:3] != (size, size):
        raise ExportError(
            f"{run.checkpoint.name} takes input {shape[1:]} but {run.folder / 'config.json'} says "
            f"image_size {size}: config and checkpoint come from different runs"
        )
    if shape[3] != 1:
        raise ExportError(f"{run.checkpoint.name} takes {shape[3]} channels; preprocessing makes 1 (grayscale)")
    from export.graph import REQUIRED_LAYERS

    names = {layer.name for layer in model.layers}
    missing = [name for name in REQUIRED_LAYERS if name not in names]
    if missing:
        raise ExportError(
            f"{run.checkpoint.name} has no layer(s) {', '.join(missing)}: not a pneumoscan-train model"
        )


def load_model(run: Run):
    """Load the Keras checkpoint and check it against the run's config."""
    import keras

    try:
        model = keras.models.load_model(run.checkpoint, compile=False)
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"cannot load {run.checkpoint}: {first}") from None
    check_model(model, run)
    return model


def split_samples(run: Run, which: str) -> list[Sample]:
    """The run's ``train`` or ``validation`` images as labelled samples (content hash unused)."""
    paths = [Path(p) for p in run.split[which]]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ExportError(
            f"{len(missing)} of the {len(paths)} {which} images in {run.folder / 'split.json'} no "
            f"longer exist (first: {missing[0]}); export where the training data is available"
        )
    try:
        return train_split_samples(run.split, which)
    except DataError as exc:
        raise ExportError(f"{run.folder}: {exc}") from None
