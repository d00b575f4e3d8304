"""Finding the labelled images, naming their patients, dropping duplicates, splitting by patient.

A data set is a folder with one sub-folder per class (``ROOT/train/<class>/`` or ``ROOT/<class>/``),
or a CSV of ``path,label[,patient]``; :mod:`train.labels` says how its classes map onto the
screening and pattern heads. ``Sample.label`` is always the *screening* label (0 = negative,
1 = positive) except in a binary scheme, where it is the index into the two classes (the same
thing); ``Sample.pattern`` is the pattern head's label, or -1 where it has none.

Nothing here imports TensorFlow: it is plain bookkeeping over file names and bytes, so it is
fast to test and the split can be audited (``split.json``) without loading a model.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edge_app.preprocessing import SUPPORTED_SUFFIXES
from train.labels import (
    NO_PATTERN,
    LabelError,
    LabelScheme,
    read_label_csv,
    resolve_scheme,
    screening_and_pattern,
)

CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # index = label; PNEUMONIA is the positive class

#: Folder names that are splits of a data set, never classes.
SPLIT_NAMES = ("train", "test", "val")

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
    pattern: int = NO_PATTERN


def samples_from_split(split: dict, which: str) -> list[Sample] | None:
    """The ``which`` ("train" or "validation") images of a run's ``split.json`` as samples, with
    the labels and patterns :func:`train.labels.split_labels` recorded (content hash unused);
    None for a run from before labels were recorded."""
    paths = [Path(p) for p in split[which]]
    labels = split.get("labels", {}).get(which)
    if labels is None:
        return None
    patterns = split.get("patterns", {}).get(which)
    patterns = patterns if patterns is not None else [NO_PATTERN] * len(paths)
    if not len(labels) == len(patterns) == len(paths):
        raise DataError(f"split.json: {which} labels and paths differ in number")
    return [Sample(p, int(lab), patient_of(p), "", int(pat)) for p, lab, pat in zip(paths, labels, patterns)]


def split_samples(split: dict, which: str) -> list[Sample]:
    """:func:`samples_from_split`, or for a run from before labels were recorded (always a
    two-class folder run then) the labels its class folders give."""
    samples = samples_from_split(split, which)
    if samples is None:
        return [Sample(Path(p), label_of(p), patient_of(p), "") for p in split[which]]
    return samples


def label_of(path: str | Path) -> int:
    """A two-class file's label from its class folder (the nearest ancestor named like a class)."""
    for parent in Path(path).parents:
        if parent.name in CLASS_NAMES:
            return CLASS_NAMES.index(parent.name)
    raise DataError(f"{path} is not inside a {' or '.join(CLASS_NAMES)} folder")


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
    """The class folders under ``root/split``, or directly under ``root``: ``NORMAL`` and
    ``PNEUMONIA`` if both are there, else every sub-folder (at least two) that is not a split
    name (train/test/val), in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    for base in (root / split, root):
        dirs = {name: base / name for name in CLASS_NAMES}
        if all(d.is_dir() for d in dirs.values()):
            return dirs
    for base in (root / split, root):
        if base.is_dir():
            found = sorted(d for d in base.iterdir() if d.is_dir() and d.name.lower() not in SPLIT_NAMES)
            if len(found) >= 2:
                return {d.name: d for d in found}
    raise DataError(
        f"{root} has neither {split}/<class folders> nor class folders directly in it "
        f"(at least two, e.g. NORMAL + PNEUMONIA)"
    )


def find_classes(data: str | Path, split: str = "train") -> list[str]:
    """The class names of a folder data set or a ``path,label[,patient]`` CSV."""
    try:
        if Path(data).suffix.lower() == ".csv":
            return sorted({row.label for row in read_label_csv(data)})
    except LabelError as exc:
        raise DataError(str(exc)) from None
    return list(find_class_dirs(data, split))


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` in a stable order (suffix match ignores case)."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_scheme(config) -> LabelScheme:
    """The scheme of a run (a :class:`train.config.TrainConfig`): the stored one if the run has
    one, else resolved from the classes its data holds and its options."""
    stored = config.extra.get("labels")
    if stored:
        return LabelScheme.from_dict(stored)
    try:
        return resolve_scheme(
            find_classes(config.data, "train"),
            pattern=config.pattern,
            negative=config.negative_class,
        )
    except LabelError as exc:
        raise DataError(str(exc)) from None


def scan(root: str | Path, split: str = "train", scheme: LabelScheme | None = None) -> list[Sample]:
    """All labelled images of ``split`` (a CSV has no splits); each class must have an image.

    ``scheme`` defaults to what the classes found imply (:func:`train.labels.resolve_scheme`
    without options: NORMAL/PNEUMONIA is the binary scheme as always).
    """
    try:
        if Path(root).suffix.lower() == ".csv":
            return _scan_csv(Path(root), scheme)
        dirs = find_class_dirs(root, split)
        scheme = scheme or resolve_scheme(list(dirs))
        samples = []
        for name, folder in dirs.items():
            files = list_images(folder)
            if not files:
                raise DataError(f"class folder {folder} holds no .jpeg/.jpg/.png images")
            for p in files:
                label, pattern = screening_and_pattern(scheme, name, p)
                samples.append(Sample(p, label, patient_of(p), file_sha256(p), pattern))
        return samples
    except LabelError as exc:
        raise DataError(str(exc)) from None


def _scan_csv(csv_path: Path, scheme: LabelScheme | None) -> list[Sample]:
    """A CSV's rows as samples: the ``patient`` column if given, else the Kermany name rule."""
    rows = read_label_csv(csv_path)
    scheme = scheme or resolve_scheme(sorted({r.label for r in rows}))
    samples = []
    for row in rows:
        if row.path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise DataError(f"{csv_path}: {row.path} is not a .jpeg/.jpg/.png image")
        label, pattern = screening_and_pattern(scheme, row.label, row.path)
        patient = f"csv:{row.patient}" if row.patient else patient_of(row.path)
        samples.append(Sample(row.path, label, patient, file_sha256(row.path), pattern))
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
        if (seen.label, seen.pattern) != (sample.label, sample.pattern):
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
    base = Path(os.path.abspath(root))
    base = base.parent if base.is_file() else base  # a CSV's paths are relative to its folder
    for s in sorted(samples, key=lambda s: str(s.path)):
        rel = _hashed_path(Path(s.path), base)
        label = s.label if s.pattern == NO_PATTERN else f"{s.label}.{s.pattern}"
        digest.update(f"{rel}\t{label}\t{s.sha256}\n".encode())
    return digest.hexdigest()


def _hashed_path(path: Path, base: Path) -> str:
    """The name a film is hashed under: relative to the data folder as the user laid it out.

    Symbolic links are not followed first (a folder of links to a shared copy of the films is a
    data set like any other), but a path reached through a linked folder still counts as inside;
    a CSV row pointing outside its folder is hashed by its absolute path.
    """
    absolute = Path(os.path.abspath(path))
    for inner, outer in ((absolute, base), (absolute.resolve(), base.resolve())):
        if inner.is_relative_to(outer):
            return inner.relative_to(outer).as_posix()
    return absolute.as_posix()


def gather(config, log=print):
    """(``config``: a :class:`train.config.TrainConfig`.) Scan, de-duplicate and split the data by
    the run's label scheme (recorded in ``config.extra["labels"]``); returns (train, validation, report)."""
    scheme = run_scheme(config)
    config.extra["labels"] = scheme.to_dict()
    samples = limit_per_class(scan(config.data, "train", scheme), config.limit_per_class)
    kept, dropped = drop_duplicates(samples)
    train, validation = split_by_patient(kept, config.validation_fraction, config.seed, config.split_order)
    # Kaggle's val/ (16 images) is too small to select models on; it only adds training data.
    extra = []
    kaggle_val = Path(config.data) / "val"
    if config.use_kaggle_val and kaggle_val.is_dir():
        known = {s.sha256 for s in kept}
        extra = [s for s in drop_duplicates(scan(kaggle_val, "", scheme))[0] if s.sha256 not in known]
        train = train + extra
    report = {
        "images_found": len(samples),
        "duplicates_dropped": len(dropped),
        "kaggle_val_added_to_train": len(extra),
        "train": scheme.counts(train),
        "validation": scheme.counts(validation),
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
