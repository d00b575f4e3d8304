"""One typed config per run, saved as ``config.json`` beside the checkpoint.

It holds every setting that shapes the model or its data, so a run can be rebuilt, audited and
exported from its folder alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edge_app.preprocessing import PreprocessSpec


#: ``cnn``: the notebook's five blocks, from scratch; ``efficientnet-lite0``: that network's
#: backbone under the same head, started from ImageNet by ``fit`` (train/efficientnet_lite.py).
ARCHITECTURES = ("cnn", "efficientnet-lite0")


@dataclass
class TrainConfig:
    data: str = ""
    image_size: int = 128
    normalization: str = "percentile"
    # "cnn" (the five blocks of ``filters``, from scratch) or "efficientnet-lite0" (ImageNet
    # backbone, train/efficientnet_lite.py; ``filters`` then unused).
    architecture: str = "cnn"
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
    # Share of training images given Gaussian sensor noise (train/pipeline.py: random_noise).
    noise_probability: float = 0.0
    # Share of training images sharpened by an unsharp mask (train/pipeline.py: random_sharpen):
    # the other side of blur. Units and PACS exports that edge-enhance made the default model
    # lose sensitivity (stress "sharpen": 0.942), more than any framing change did.
    sharpen_probability: float = 0.0
    # Framing augmentation (train/pipeline.py): random-resized crop area range as a share of the
    # film (< 1 zooms in, > 1 zooms out with edge/reflect/black fill); (1, 1) keeps the older
    # zoom/shift/rotation layers. Aspect jitter is the largest width/height ratio either way.
    crop_area_min: float = 1.0
    crop_area_max: float = 1.0
    aspect_jitter: float = 1.0
    # Shares of training images given a laterality letter (text lines: half as many) and
    # collimation bands, on both classes alike, so neither is a cue.
    marker_probability: float = 0.0
    band_probability: float = 0.0
    # Shift perturbations (train/shift.py) of the validation films added to the set the best
    # epoch is chosen on, e.g. ("crop_10", "pad_edge_25", "aspect_1.25"); empty: clean only.
    selection_shifts: tuple[str, ...] = ()
    # What the checkpoint and early stopping follow on that set (train/selection.py): "auc" (pooled
    # AUC) or "shift-specificity" (worst specificity over the copies at the shift-robust threshold).
    select_by: str = "auc"
    # Weight of the paired-view consistency loss (train/model.py; 0 = off): each step sees two
    # augmentations of batch_size/2 films and is asked to give both the same logit.
    consistency: float = 0.0
    # Mixup (train/pipeline.py: mix_films): Beta(mixup, mixup) blends of two training films and
    # their labels, e.g. 0.2; 0 = off. Binary screening runs only.
    mixup: float = 0.0
    # Exponential moving average of the weights (0 = off); evaluated and checkpointed with EMA.
    ema_momentum: float = 0.0
    # Keep every epoch's weights (as validated: averaged, with EMA) in ``epochs/`` of the run
    # folder, for a weight average over a window of epochs afterwards (train/weight_average.py).
    keep_epochs: bool = False
    validation_fraction: float = 0.15
    split_order: str = "random"
    use_kaggle_val: bool = True
    early_stopping_patience: int = 6
    reduce_lr_patience: int = 3
    # "plateau": cut the rate by 0.3 after reduce_lr_patience epochs without a better val AUC;
    # "cosine": a cosine decay over the epochs to 1% of the rate (train/schedule.py says why).
    lr_schedule: str = "plateau"
    # Epochs over which the rate rises step by step from ~0 to the schedule's (0 = off): a
    # safeguard for a pretrained backbone under a fresh head (train/schedule.py says what it measured).
    warmup_epochs: int = 0
    sensitivity_target: float = 0.97
    # "sensitivity": the target on clean validation; "shift-robust": on clean validation and on
    # every shift perturbation (train/metrics.py says why).
    threshold_rule: str = "sensitivity"
    seed: int = 42
    skip_bad: bool = False
    # Classes beyond NORMAL/PNEUMONIA (train/labels.py): the Kermany file-name kind as a pattern
    # head, and the screening-negative class of another layout.
    pattern: bool = False
    negative_class: str = ""
    limit_per_class: int = 0  # 0: every image; N: the first N files of each class
    # A run folder (or its model.keras) whose backbone this run starts from (train/warm_start.py).
    init_from: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def framing(self) -> bool:
        """Whether the random-resized framing augmentation replaces the zoom/shift layers."""
        return (self.crop_area_min, self.crop_area_max, self.aspect_jitter) != (1.0, 1.0, 1.0)

    @property
    def preprocess(self) -> PreprocessSpec:
        return PreprocessSpec(image_size=self.image_size, normalization=self.normalization)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["filters"] = list(self.filters)
        data["selection_shifts"] = list(self.selection_shifts)
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
        if "selection_shifts" in values:
            values["selection_shifts"] = tuple(values["selection_shifts"])
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
