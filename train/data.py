"""Finding the labelled images, naming their patients, dropping duplicates, splitting by patient.

Nothing here imports TensorFlow: it is plain bookkeeping over file names and bytes, so it is
fast to test and the split can be audited (``split.json``) without loading a model.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edge_app.preprocessing import SUPPORTED_SUFFIXES

CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # index = label; PNEUMONIA is the positive class

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)


class DataError(ValueError):
    """A dataset that cannot be trained on; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    patient: str
    sha256: str


def patient_of(path: str | Path) -> str:
    """The patient a Kermany file name belongs to; an unrecognised name is its own patient.

    ``person1_bacteria_1.jpeg`` and ``person1_virus_7.jpeg`` are patient ``person1``;
    ``IM-0115-0001.jpeg`` is ``IM-0115`` and ``NORMAL2-IM-0115-0001.jpeg`` is ``NORMAL2-IM-0115``
    (a separate series with its own numbering).
    """
    name = Path(path).name
    for pattern in (_PERSON, _NORMAL):
        match = pattern.match(name)
        if match:
            return match.group(1).lower()
    return f"file:{name.lower()}"


def find_class_dirs(root: str | Path, split: str = "train") -> dict[str, Path]:
    """Locate ``NORMAL``/``PNEUMONIA`` under ``root/split`` or directly under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    for base in (root / split, root):
        dirs = {name: base / name for name in CLASS_NAMES}
        if all(d.is_dir() for d in dirs.values()):
            return dirs
    raise DataError(
        f"{root} has neither {split}/NORMAL + {split}/PNEUMONIA nor NORMAL + PNEUMONIA folders"
    )


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` in a stable order (suffix match ignores case)."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scan(root: str | Path, split: str = "train") -> list[Sample]:
    """All labelled images of ``split``; each class must have at least one image."""
    samples = []
    for label, (name, folder) in enumerate(find_class_dirs(root, split).items()):
        files = list_images(folder)
        if not files:
            raise DataError(f"class folder {folder} holds no .jpeg/.jpg/.png images")
        samples += [Sample(p, label, patient_of(p), file_sha256(p)) for p in files]
    return samples


def limit_per_class(samples: list[Sample], limit: int) -> list[Sample]:
    """The first ``limit`` files of each class in scan order (sorted paths); 0 keeps them all.

    A small, reproducible slice of a large folder: a smoke run, a benchmark, or a check that a
    multi-host launch works before the full fit. Sorted names keep each patient's files together.
    """
    if limit < 0:
        raise DataError(f"--limit-per-class must be 0 (all) or a positive number, got {limit}")
    if not limit:
        return samples
    kept, count = [], {}
    for sample in samples:
        count[sample.label] = count.get(sample.label, 0) + 1
        if count[sample.label] <= limit:
            kept.append(sample)
    return kept


def drop_duplicates(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """Keep the first file of each byte-identical group; return (kept, dropped).

    A duplicate with a different label is a labelling error we cannot resolve, so it is refused.
    """
    first: dict[str, Sample] = {}
    kept, dropped = [], []
    for sample in samples:
        seen = first.get(sample.sha256)
        if seen is None:
            first[sample.sha256] = sample
            kept.append(sample)
            continue
        if seen.label != sample.label:
            raise DataError(f"{sample.path} and {seen.path} are identical but labelled differently")
        dropped.append(sample)
    return kept, dropped


SPLIT_ORDERS = ("random", "earliest")


def _earliest_first(patients: list[str]) -> list[str]:
    """Patients ordered oldest-acquisition first: lowest number within each naming series
    (``im-``, ``normal2-im-``, ``person``), series interleaved by rank so each gives its share."""
    series: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for patient in patients:
        match = re.match(r"^(.*?)(\d+)$", patient)
        prefix, number = (match.group(1), int(match.group(2))) if match else (patient, 0)
        series[prefix].append((number, patient))
    ranked = []
    for members in series.values():
        members.sort()
        ranked += [((i + 0.5) / len(members), patient) for i, (_, patient) in enumerate(members)]
    return [patient for _, patient in sorted(ranked)]


def split_by_patient(
    samples: list[Sample], validation_fraction: float, seed: int, order: str = "random"
) -> tuple[list[Sample], list[Sample]]:
    """Split into (train, validation) so that no patient is on both sides.

    Validation takes whole patients, per class, until it holds ``validation_fraction`` of that
    class's images, so both sides keep the class balance. ``order="random"`` shuffles patients
    with ``seed``. ``order="earliest"`` takes the lowest-numbered patients of each naming series
    instead: the set's numbering follows acquisition, and the official test split holds the
    earliest patients (below this folder's first IM-0115 / NORMAL2-IM-0383), so this is the
    closest slice of the training folder to a shift in time and equipment.
    """
    if order not in SPLIT_ORDERS:
        raise DataError(f"split order must be one of {SPLIT_ORDERS}, got {order!r}")
    if not 0.0 < validation_fraction < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {validation_fraction}")
    labels_of: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        labels_of[s.patient].add(s.label)
    mixed = sorted(p for p, labels in labels_of.items() if len(labels) > 1)
    if mixed:
        raise DataError(f"patients with images in both classes: {', '.join(mixed[:5])}")

    rng = random.Random(seed)
    validation_patients: set[str] = set()
    for label in sorted({s.label for s in samples}):
        by_patient: dict[str, int] = defaultdict(int)
        for s in samples:
            if s.label == label:
                by_patient[s.patient] += 1
        patients = sorted(by_patient)
        if order == "earliest":
            patients = _earliest_first(patients)
        else:
            rng.shuffle(patients)
        target = validation_fraction * sum(by_patient.values())
        taken = 0
        for patient in patients:
            if taken >= target:
                break
            validation_patients.add(patient)
            taken += by_patient[patient]
    train = [s for s in samples if s.patient not in validation_patients]
    validation = [s for s in samples if s.patient in validation_patients]
    if not train or not validation:
        raise DataError("too few patients to make both a training and a validation split")
    return train, validation


def fingerprint(samples: list[Sample], root: str | Path) -> str:
    """A hash of (relative path, label, content) for every sample: which data a model saw."""
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: str(s.path)):
        rel = Path(s.path).resolve().relative_to(Path(root).resolve()).as_posix()
        digest.update(f"{rel}\t{s.label}\t{s.sha256}\n".encode())
    return digest.hexdigest()


def gather(config, log=print):
    """(``config``: a :class:`train.config.TrainConfig`.) Scan, de-duplicate and split the data; returns (train, validation, report)."""
    samples = limit_per_class(scan(config.data, "train"), config.limit_per_class)
    kept, dropped = drop_duplicates(samples)
    train, validation = split_by_patient(kept, config.validation_fraction, config.seed, config.split_order)
    # Kaggle's val/ (16 images) is too small to select models on; it only adds training data.
    extra = []
    kaggle_val = Path(config.data) / "val"
    if config.use_kaggle_val and kaggle_val.is_dir():
        known = {s.sha256 for s in kept}
        extra = [s for s in drop_duplicates(scan(kaggle_val, ""))[0] if s.sha256 not in known]
        train = train + extra
    report = {
        "images_found": len(samples),
        "duplicates_dropped": len(dropped),
        "kaggle_val_added_to_train": len(extra),
        "train": {name: sum(s.label == i for s in train) for i, name in enumerate(CLASS_NAMES)},
        "validation": {name: sum(s.label == i for s in validation) for i, name in enumerate(CLASS_NAMES)},
        "train_patients": len({s.patient for s in train}),
        "validation_patients": len({s.patient for s in validation}),
        "fingerprint": fingerprint(kept, config.data),
    }
    log(
        f"data: {len(samples)} images, {len(dropped)} byte-identical duplicates dropped, "
        f"{len(extra)} from Kaggle val/ added to training; train {report['train']} "
        f"({report['train_patients']} patients), validation {report['validation']} "
        f"({report['validation_patients']} patients)"
    )
    return train, validation, report
