"""Write the bacterial / viral labels of the Kermany PNEUMONIA films as a ``path,label,patient`` CSV.

    python scripts/pattern_labels_csv.py DATA_ROOT OUT.csv

The pattern network of a graft (``train/pattern_graft.py``) is a two-class run on the positive
films alone; ``pneumoscan-train fit OUT.csv --negative-class bacterial`` trains it. The kind comes
from each file name (``personN_bacteria_M`` / ``personN_virus_M``, ``train.labels.kermany_pattern``);
paths are written absolute, so the CSV can live anywhere and nothing is copied.

Patients: 808 person numbers have films of both kinds, which one patient-wise split cannot put on
one side by class. Whether ``person1000_bacteria_2931`` and ``person1000_virus_1681`` are one child
is not documented (each kind has its own image numbering). Each kind's person is therefore its own
patient (``bacterial-person1000``): if they were one child, a film in training and one in
validation would carry opposite labels, which can only make the validation figures worse, never
flatter them.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from train.data import find_class_dirs, patient_of
from train.labels import KERMANY_PATTERNS, NO_PATTERN, kermany_pattern
from edge_app.preprocessing import SUPPORTED_SUFFIXES


def rows(data_root: str | Path) -> list[tuple[str, str, str]]:
    folder = find_class_dirs(data_root)["PNEUMONIA"]
    out = []
    for path in sorted(folder.iterdir()):
        kind = kermany_pattern(path)
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or kind == NO_PATTERN:
            continue
        label = KERMANY_PATTERNS[kind]
        out.append((str(path.resolve()), label, f"{label}-{patient_of(path)}"))
    return out


def main(data_root: str, out: str) -> None:
    found = rows(data_root)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "patient"])
        writer.writerows(found)
    counts = {k: sum(r[1] == k for r in found) for k in KERMANY_PATTERNS}
    print(f"wrote {out}: {len(found)} films, {counts}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(*sys.argv[1:])
