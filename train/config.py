"""One typed config per run, saved as ``config.json`` beside the checkpoint.

It holds every setting that shapes the model or its data, so a run can be rebuilt, audited and
exported from its folder alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edge_app.preprocessing import PreprocessSpec


@dataclass
class TrainConfig:
    data: str = ""
    image_size: int = 128
    normalization: str = "percentile"
    filters: tuple[int, ...] = (16, 32, 64, 128, 192)
    dense_units: int = 64
    dropout: float = 0.4
    l2: float = 1e-4
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    label_smoothing: float = 0.0
    class_weights: bool = True
    augment: bool = True
    # Augmentation strengths: rotation in fractions of a full turn (Keras convention).
    rotation: float = 0.03
    zoom: float = 0.10
    shift: float = 0.06
    contrast: float = 0.2
    # Probability of blurring a training image (down-and-up scaling) so sharpness, which differs
    # between the classes' source scanners, stops being a cue.
    blur_probability: float = 0.0
    validation_fraction: float = 0.15
    split_order: str = "random"
    use_kaggle_val: bool = True
    early_stopping_patience: int = 6
    reduce_lr_patience: int = 3
    sensitivity_target: float = 0.97
    seed: int = 42
    skip_bad: bool = False
    # Classes beyond NORMAL/PNEUMONIA (train/labels.py): the Kermany file-name kind as a pattern
    # head, and the screening-negative class of another layout.
    pattern: bool = False
    negative_class: str = ""
    limit_per_class: int = 0  # 0: every image; N: the first N files of each class
    extra: dict = field(default_factory=dict)

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec(image_size=self.image_size, normalization=self.normalization)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["filters"] = list(self.filters)
        data["preprocessing"] = self.preprocess.to_dict()
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "filters" in values:
            values["filters"] = tuple(int(x) for x in values["filters"])
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
