"""Which classes a data set has, and how they map onto the model's two heads.

Every model pneumoscan trains has the **screening head**: one logit, "is there a finding or not",
with the threshold chosen by the run's sensitivity rule, the heatmap and the uncertain band. That
decision is what sends a child to a clinician, so it never depends on how finely the positives
are subdivided. A data set with more than two classes adds a **pattern head** that says which
kind of finding a positive film looks like; it is trained only on positive films (the loss is
masked for the negative class) and read only when the screening head is positive.

Three label schemes, chosen by :func:`resolve_scheme`:

- ``binary``: two classes, negative first (``NORMAL``/``PNEUMONIA``, the shipped model). No
  pattern head: a two-class run is exactly what it was before this module existed.
- ``kermany-pattern`` (``pneumoscan-train fit --pattern``): the Kermany folders, with the kind in
  each PNEUMONIA file name (``personN_bacteria_M``, ``personN_virus_M``) as a second level:
  patterns ``bacterial`` and ``viral``.
- ``folders``: N >= 3 class folders (or CSV labels). The negative class (``--negative-class``,
  or the one named ``NORMAL`` in any case) is the screening negative; every other class is a
  pattern.

Whatever the data set calls its classes, the screening head's two labels are always
:data:`SCREENING_LABELS` (``NORMAL``, ``PNEUMONIA``): the device's contract fixes them (the score
is P(PNEUMONIA)), and the data set's own names live on in ``classes`` and the pattern labels. With two patterns the pattern head is one logit (sigmoid), with three or more a
  softmax over them.

Patients (for the patient-wise split): Kermany file names name them
(:func:`train.data.patient_of`); a CSV may give a ``patient`` column; otherwise each file is its
own patient, which is only safe when no patient has more than one film.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

KIND_BINARY = "binary"
KIND_KERMANY = "kermany-pattern"
KIND_FOLDERS = "folders"
KINDS = (KIND_BINARY, KIND_KERMANY, KIND_FOLDERS)

#: The Kermany pattern names, in label order (0 = bacterial, 1 = viral), and the file-name word for each.
KERMANY_PATTERNS = ("bacterial", "viral")
_KERMANY_KIND = re.compile(r"_(bacteria|virus)_", re.IGNORECASE)
_KERMANY_WORDS = {"bacteria": 0, "virus": 1}

#: The screening head's labels, negative first, for every scheme (the contract requires them).
SCREENING_LABELS = ("NORMAL", "PNEUMONIA")

#: ``Sample.pattern`` of a film with no pattern label (negative films; all films of a binary run).
NO_PATTERN = -1


class LabelError(ValueError):
    """Labels that cannot be trained on; the message says what to fix."""


def kermany_pattern(path: str | Path) -> int:
    """0 (bacterial) or 1 (viral) from a Kermany PNEUMONIA file name, else :data:`NO_PATTERN`."""
    match = _KERMANY_KIND.search(Path(path).name)
    return _KERMANY_WORDS[match.group(1).lower()] if match else NO_PATTERN


@dataclass(frozen=True)
class LabelScheme:
    """The classes of a run and their meaning; stored in ``config.json`` under ``extra.labels``.

    ``classes`` are the data set's own class names (folders or CSV labels) in the order of
    ``Sample.label`` for a binary scheme; ``screening`` the two names the screening head decides
    between (negative first); ``patterns`` the pattern head's names (empty for binary).
    """

    kind: str
    classes: tuple[str, ...]
    screening: tuple[str, str]
    patterns: tuple[str, ...] = ()

    @property
    def has_pattern(self) -> bool:
        return bool(self.patterns)

    @property
    def pattern_output(self) -> str | None:
        """``"logit"`` (two patterns: one sigmoid logit, P(second pattern)) or ``"logits"``
        (three or more: softmax), None without a pattern head."""
        if not self.patterns:
            return None
        return "logit" if len(self.patterns) == 2 else "logits"

    @property
    def pattern_units(self) -> int:
        return 1 if len(self.patterns) == 2 else len(self.patterns)

    def counts(self, samples) -> dict:
        """Films per screening label and, with patterns, per pattern (for the run's report)."""
        counts = {name: sum(s.label == i for s in samples) for i, name in enumerate(self.screening)}
        for i, name in enumerate(self.patterns):
            counts[f"{self.screening[1]}/{name}"] = sum(s.pattern == i for s in samples)
        return counts

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "screening": list(self.screening),
            "patterns": list(self.patterns),
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> "LabelScheme":
        """The stored scheme; a run from before schemes existed is binary NORMAL/PNEUMONIA."""
        if not data:
            return BINARY_KERMANY
        kind = data.get("kind")
        if kind not in KINDS:
            raise LabelError(f"label scheme kind {kind!r} not in {KINDS}")
        return cls(
            kind=kind,
            classes=tuple(data["classes"]),
            screening=tuple(data["screening"]),  # type: ignore[arg-type]
            patterns=tuple(data.get("patterns", ())),
        )


BINARY_KERMANY = LabelScheme(KIND_BINARY, ("NORMAL", "PNEUMONIA"), ("NORMAL", "PNEUMONIA"))


def resolve_scheme(
    classes: list[str], *, pattern: bool = False, negative: str = ""
) -> LabelScheme:
    """The scheme for a data set with class names ``classes`` (folder or CSV labels).

    ``pattern`` asks for the Kermany second level (needs exactly NORMAL and PNEUMONIA).
    ``negative`` names the screening-negative class; if empty, a class called ``normal`` (any
    case) is it.
    """
    names = list(dict.fromkeys(classes))
    if len(names) < 2:
        raise LabelError(f"need at least two classes, found {names or 'none'}")
    if pattern:
        if {n.upper() for n in names} != {"NORMAL", "PNEUMONIA"}:
            raise LabelError(f"--pattern needs the Kermany NORMAL and PNEUMONIA classes, found {names}")
        return LabelScheme(KIND_KERMANY, ("NORMAL", "PNEUMONIA"), ("NORMAL", "PNEUMONIA"), KERMANY_PATTERNS)
    if sorted(names) == ["NORMAL", "PNEUMONIA"] and not negative:
        return BINARY_KERMANY
    if negative:
        if negative not in names:
            raise LabelError(f"negative class {negative!r} is not one of the classes {names}")
    else:
        normal = [n for n in names if n.lower() == "normal"]
        if len(normal) != 1:
            raise LabelError(
                f"which class is the screening negative? none of {names} is called NORMAL: "
                f"pass --negative-class NAME"
            )
        negative = normal[0]
    others = sorted(n for n in names if n != negative)
    if len(others) == 1:
        return LabelScheme(KIND_BINARY, (negative, others[0]), SCREENING_LABELS)
    return LabelScheme(KIND_FOLDERS, (negative, *others), SCREENING_LABELS, tuple(others))


def screening_and_pattern(scheme: LabelScheme, class_name: str, path: Path) -> tuple[int, int]:
    """(screening label 0/1, pattern index or :data:`NO_PATTERN`) of a film of ``class_name``."""
    if class_name not in scheme.classes:
        raise LabelError(f"{path}: class {class_name!r} is not one of {list(scheme.classes)}")
    if scheme.kind == KIND_BINARY:
        return scheme.classes.index(class_name), NO_PATTERN
    if class_name == scheme.classes[0]:
        return 0, NO_PATTERN
    if scheme.kind == KIND_KERMANY:
        kind = kermany_pattern(path)
        if kind == NO_PATTERN:
            raise LabelError(
                f"{path}: a PNEUMONIA file name must say bacteria or virus (personN_bacteria_M, "
                f"personN_virus_M) for --pattern"
            )
        return 1, kind
    return 1, scheme.patterns.index(class_name)


@dataclass(frozen=True)
class CsvRow:
    path: Path
    label: str
    patient: str | None


def read_label_csv(csv_path: str | Path) -> list[CsvRow]:
    """Rows of a ``path,label[,patient]`` CSV with a header; relative paths are relative to the
    CSV's folder. Every problem is collected and reported at once."""
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "path" not in columns or "label" not in columns:
        raise LabelError(f"{csv_path} needs a header with 'path' and 'label' columns (and optionally 'patient')")
    rows, problems = [], []
    for line, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row.get("path") or not row.get("label"):
            problems.append(f"line {line}: empty path or label")
            continue
        path = Path(row["path"])
        path = path if path.is_absolute() else csv_path.parent / path
        if not path.is_file():
            problems.append(f"line {line}: {path} does not exist")
            continue
        rows.append(CsvRow(path, row["label"], row.get("patient") or None))
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise LabelError(f"{csv_path}: {len(problems)} bad row(s):\n  " + "\n  ".join(problems[:20]) + more)
    if not rows:
        raise LabelError(f"{csv_path} lists no images")
    return rows


def split_labels(train, validation) -> dict:
    """The labels of a run's split for ``split.json``, so export needs no folder names to know
    them (a CSV data set has none): screening label and pattern per listed file."""
    return {
        "labels": {"train": [s.label for s in train], "validation": [s.label for s in validation]},
        "patterns": {"train": [s.pattern for s in train], "validation": [s.pattern for s in validation]},
    }
