"""The worklist: one day of the audit log as the nurse sees it, and the filters she picks.

Rows are the audit log's, in ``history``'s export shape (local times, ``extra`` spread out), so
the page, ``GET /api/worklist`` and the CSV download show what ``pneumoscan history`` exports,
whoever screened the film (this server, ``watch``, or the DICOM node). Each row falls in one
category:

- ``referred``  signs of pneumonia likely (above the threshold, outside the uncertain band)
- ``uncertain`` inside the model's uncertain band: a clinician must look
- ``no-signs``  below the threshold, outside the band
- ``refused``   could not be screened (not an image, not a chest X-ray, ...)
- ``pending``   being screened right now (or interrupted; ``watch`` completes it)

Patient identifiers (a DICOM file's ``patient_*`` fields, recorded by a ``watch --with-ids``) are
removed unless the server itself runs with ``--with-ids``.
"""

from __future__ import annotations

from datetime import date

from edge_app.history import local_time

CATEGORIES = ("referred", "uncertain", "no-signs", "refused", "pending")

#: What the filter buttons say, in the order shown.
FILTERS = {"all": "All", "referred": "Referred", "uncertain": "Uncertain", "no-signs": "No signs", "refused": "Refused"}


def parse_day(text: str | None) -> date:
    """``YYYY-MM-DD`` (or nothing: today); ``ValueError`` with a usable message otherwise."""
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def category(row: dict, positive_label: str) -> str:
    if row["status"] == "pending":
        return "pending"
    if row["status"] == "error":
        return "refused"
    if row["uncertain"]:
        return "uncertain"
    return "referred" if row["label"] == positive_label else "no-signs"


def without_identifiers(row: dict) -> dict:
    """``row`` with its DICOM ``patient_*`` fields removed (the row itself is left as it was)."""
    extra = row.get("extra") or {}
    dicom = extra.get("dicom")
    if not isinstance(dicom, dict) or not any(key.startswith("patient_") for key in dicom):
        return row
    kept = {key: value for key, value in dicom.items() if not key.startswith("patient_")}
    return {**row, "extra": {**extra, "dicom": kept}}


def select(rows: list[dict], wanted: str, positive_label: str, with_ids: bool) -> list[dict]:
    """The rows of category ``wanted`` (``all``: every row), identifiers removed unless ``with_ids``."""
    if wanted not in FILTERS:
        raise ValueError(f"unknown filter {wanted!r}; one of {', '.join(FILTERS)}")
    chosen = [r for r in rows if wanted == "all" or category(r, positive_label) == wanted]
    return chosen if with_ids else [without_identifiers(r) for r in chosen]


def counts(rows: list[dict], positive_label: str) -> dict[str, int]:
    """How many rows fall in each category, and ``all``."""
    tally = dict.fromkeys(("all", *CATEGORIES), 0)
    for row in rows:
        tally["all"] += 1
        tally[category(row, positive_label)] += 1
    return tally


def shown_time(row: dict) -> str:
    """``HH:MM`` in local time, for the worklist's first column."""
    return local_time(row["created_at"])[11:16]
