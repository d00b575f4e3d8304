"""The worklist: one day of the audit log as the nurse sees it, and the filters she picks.

Entries are the audit log's (:class:`~edge_app.audit_log.LogEntry`), so the page, ``GET
/api/worklist`` and the CSV download show what ``pneumoscan history`` exports, whoever screened
the film (this server, ``watch``, or the DICOM node). Each entry falls in one category:

- ``referred``  signs of pneumonia likely (above the threshold, outside the uncertain band)
- ``uncertain`` inside the model's uncertain band: a clinician must look
- ``no-signs``  below the threshold, outside the band
- ``refused``   could not be screened (not an image, not a chest X-ray, ...)
- ``pending``   being screened right now (or interrupted; ``watch`` completes it)

Patient identifiers (a DICOM file's ``patient_*`` fields, recorded by a ``watch --with-ids``) are
removed unless the server itself runs with ``--with-ids``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from edge_app.audit_log import LogEntry
from edge_app.formatting import local_time

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


def category(entry: LogEntry, positive_label: str) -> str:
    if entry.status == "pending":
        return "pending"
    if entry.status == "error":
        return "refused"
    if entry.result.uncertain:
        return "uncertain"
    return "referred" if entry.result.label == positive_label else "no-signs"


def without_identifiers(entry: LogEntry) -> LogEntry:
    """``entry`` with its DICOM ``patient_*`` fields removed (the entry itself is left as it was)."""
    extra = entry.result.extra
    dicom = extra.get("dicom")
    if not isinstance(dicom, dict) or not any(key.startswith("patient_") for key in dicom):
        return entry
    kept = {key: value for key, value in dicom.items() if not key.startswith("patient_")}
    return replace(entry, result=replace(entry.result, extra={**extra, "dicom": kept}))


def select(entries: list[LogEntry], wanted: str, positive_label: str, with_ids: bool) -> list[LogEntry]:
    """The entries of category ``wanted`` (``all``: every one), identifiers removed unless ``with_ids``."""
    if wanted not in FILTERS:
        raise ValueError(f"unknown filter {wanted!r}; one of {', '.join(FILTERS)}")
    chosen = [e for e in entries if wanted == "all" or category(e, positive_label) == wanted]
    return chosen if with_ids else [without_identifiers(e) for e in chosen]


def counts(entries: list[LogEntry], positive_label: str) -> dict[str, int]:
    """How many entries fall in each category, and ``all``."""
    tally = dict.fromkeys(("all", *CATEGORIES), 0)
    for entry in entries:
        tally["all"] += 1
        tally[category(entry, positive_label)] += 1
    return tally


def shown_time(entry: LogEntry) -> str:
    """``HH:MM`` in local time, for the worklist's first column."""
    return local_time(entry.created_at)[11:16]


def shown_name(entry: LogEntry) -> str:
    """The name a person knows the film by: the one it was uploaded under, else its file name."""
    return entry.result.extra.get("upload_name") or entry.result.path.replace("\\", "/").rsplit("/", 1)[-1]
