"""A site's labelled films for ``pneumoscan calibrate``: a folder per class, or a CSV of ``path,label``.

This is what a site has after a radiologist has read its films: either the films sorted into
``NORMAL/`` and ``PNEUMONIA/`` (the layout the model was trained on), or an export from its
register with one ``path,label`` row per film. Everything that would make a calibration mean
something other than what it says is refused here, before a single film is screened, with one
line naming the file and the reason: no films, one class only, a label that is neither class,
a CSV row naming a file that is not there, or the same film listed twice (it would be counted
twice). Nothing is written and nothing is moved.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edge_app.paths import walk_images

#: The two classes, negative first, as the model's contract names them.
DEFAULT_LABELS = ("NORMAL", "PNEUMONIA")

#: How many offending rows an error message names before it says "and N more".
SHOW_AT_MOST = 3


class LabelledSetError(ValueError):
    """The labelled films cannot be used for a calibration; ``str()`` is one line."""


@dataclass(frozen=True)
class LabelledFilm:
    path: str
    label: str


@dataclass(frozen=True)
class LabelledSet:
    """The films to screen, each with its reference label, and what was noticed reading them."""

    films: tuple[LabelledFilm, ...]
    source: str
    labels: tuple[str, str] = DEFAULT_LABELS
    notes: tuple[str, ...] = field(default=())

    def count(self, label: str) -> int:
        return sum(1 for film in self.films if film.label == label)

    @property
    def counts(self) -> dict[str, int]:
        return {label: self.count(label) for label in self.labels}


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOW_AT_MOST])
    return shown + (f" and {len(items) - SHOW_AT_MOST} more" if len(items) > SHOW_AT_MOST else "")


def _check_both_classes(films: list[LabelledFilm], source: str, labels: tuple[str, str]) -> None:
    if not films:
        raise LabelledSetError(f"{source}: no films to calibrate on")
    present = Counter(film.label for film in films)
    missing = [label for label in labels if not present[label]]
    if missing:
        only = next(label for label in labels if present[label])
        raise LabelledSetError(
            f"{source}: only {only} films ({present[only]}), no {missing[0]}: "
            "a threshold needs films of both classes"
        )


def read_folder(folder: Path, labels: tuple[str, str] = DEFAULT_LABELS) -> LabelledSet:
    """Films under ``folder/NORMAL`` and ``folder/PNEUMONIA`` (searched recursively, as ``predict``
    searches a folder; the sub-folder names match the labels regardless of case)."""
    if not folder.is_dir():
        raise LabelledSetError(f"{folder}: not a folder" if folder.exists() else f"{folder}: not found")
    try:
        children = {child.name.upper(): child for child in folder.iterdir() if child.is_dir()}
    except OSError as exc:
        raise LabelledSetError(f"{folder}: cannot read folder: {exc.strerror}") from None
    films: list[LabelledFilm] = []
    notes: list[str] = []
    for label in labels:
        sub = children.get(label.upper())
        if sub is None:
            continue
        found, errors = walk_images(sub)
        if errors:
            raise LabelledSetError(f"{errors[0].path}: {errors[0].error}")
        films += [LabelledFilm(path, label) for path in found]
    if not any(label.upper() in children for label in labels):
        raise LabelledSetError(
            f"{folder}: has no {labels[0]}/ or {labels[1]}/ sub-folder (or give a CSV of path,label)"
        )
    class_names = {label.upper() for label in labels}
    others = sorted(c.name for n, c in children.items() if n not in class_names and not c.name.startswith("."))
    if others:
        notes.append(f"ignored sub-folder(s) {_listing(others)} of {folder}: not a class")
    _check_both_classes(films, str(folder), labels)
    return LabelledSet(tuple(films), f"folder {folder}", labels, tuple(notes))


def read_csv(path: Path, labels: tuple[str, str] = DEFAULT_LABELS) -> LabelledSet:
    """Rows of ``path,label`` (a ``path,label`` header is optional); relative paths are taken
    from the CSV's own folder, labels match the two classes regardless of case."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often write a BOM
    except FileNotFoundError:
        raise LabelledSetError(f"{path}: not found") from None
    except UnicodeDecodeError:
        raise LabelledSetError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise LabelledSetError(f"{path}: cannot read: {exc.strerror}") from None
    rows = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), start=1)
            if row and any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0][1]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise LabelledSetError(f"{path}: no rows (expected path,label per line)")
    by_name = {label.upper(): label for label in labels}
    films: list[LabelledFilm] = []
    bad_shape, bad_label, missing = [], [], []
    seen: dict[str, int] = {}
    duplicates = []
    for number, row in rows:
        if len(row) != 2:
            bad_shape.append(f"line {number}")
            continue
        name, label = row[0].strip(), row[1].strip()
        if label.upper() not in by_name:
            bad_label.append(f"line {number} ({label!r})")
            continue
        film = Path(name) if os.path.isabs(name) else path.parent / name
        if not film.is_file():
            missing.append(f"line {number} ({name})")
            continue
        real = os.path.realpath(film)
        if real in seen:
            duplicates.append(f"line {number} repeats line {seen[real]} ({name})")
            continue
        seen[real] = number
        films.append(LabelledFilm(str(film), by_name[label.upper()]))
    if bad_shape:
        raise LabelledSetError(f"{path}: expected two columns path,label on {_listing(bad_shape)}")
    if bad_label:
        raise LabelledSetError(
            f"{path}: label must be {labels[0]} or {labels[1]} on {_listing(bad_label)}"
        )
    if missing:
        raise LabelledSetError(f"{path}: {len(missing)} film(s) not found: {_listing(missing)}")
    if duplicates:
        raise LabelledSetError(f"{path}: the same film is listed twice: {_listing(duplicates)}")
    _check_both_classes(films, str(path), labels)
    return LabelledSet(tuple(films), f"CSV {path}", labels)


def read_labelled(source: str | os.PathLike, labels: tuple[str, str] = DEFAULT_LABELS) -> LabelledSet:
    """A folder with one sub-folder per class, or a CSV of ``path,label``."""
    source = Path(source)
    if source.is_dir():
        return read_folder(source, labels)
    if source.suffix.lower() == ".csv" or source.is_file():
        return read_csv(source, labels)
    raise LabelledSetError(f"{source}: not found (give a folder with {labels[0]}/ and {labels[1]}/, or a CSV)")
