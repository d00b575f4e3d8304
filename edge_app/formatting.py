"""Render results: ``table`` for a person, ``json``/``jsonl``/``csv`` for programs and spreadsheets.

Every machine format is built from :meth:`Result.to_dict`, so all of them carry the same fields
under the same names. A failed input is ``{"path", "error"}`` in JSON and a row with an empty
probability and a filled ``error`` column in CSV. Nested fields (a DICOM file's ``"dicom"``
header fields) become dotted CSV columns such as ``dicom.modality``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from edge_app.results import Result, advice
from edge_app.screening import Summary

FORMATS = ("table", "json", "jsonl", "csv")

#: CSV columns, in order; keys a result adds through ``extra`` follow them.
CSV_COLUMNS = (
    "path",
    "probability",
    "score",
    "label",
    "uncertain",
    "threshold",
    "model_version",
    "latency_ms",
    "error",
)

#: Paths longer than this don't widen the table's first column for everybody.
MAX_PATH_WIDTH = 60

DISCLAIMER = "A screening aid, not a diagnosis: a clinician decides."


def summary_line(summary: Summary) -> str:
    images = "image" if summary.total == 1 else "images"
    parts = [
        f"{summary.likely} signs of pneumonia likely",
        f"{summary.uncertain} uncertain",
        f"{summary.clear} no signs found",
    ]
    if summary.failed:
        parts.append(f"{summary.failed} could not be screened")
    return f"{summary.total} {images}: " + ", ".join(parts) + "."


def format_table(results: list[Result], positive_label: str = "PNEUMONIA") -> str:
    """One line per image (path, then the advice line) and a summary."""
    if not results:
        return "No images to screen.\n"
    width = min(max(len(r.path) for r in results), MAX_PATH_WIDTH)
    lines = [f"{'IMAGE':<{width}}  RESULT"]
    lines += [f"{r.path:<{width}}  {advice(r, positive_label)}" for r in results]
    summary = Summary.of(results, positive_label)
    lines += ["", summary_line(summary)]
    versions = sorted({r.model_version for r in results if r.model_version})
    thresholds = sorted({r.threshold for r in results if r.threshold is not None})
    if versions and thresholds:
        lines.append(
            f"Model {', '.join(versions)}, threshold {', '.join(f'{t:g}' for t in thresholds)}. "
            + DISCLAIMER
        )
    return "\n".join(lines) + "\n"


def format_json(results: list[Result]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


def format_jsonl(results: list[Result]) -> str:
    return "".join(json.dumps(r.to_dict()) + "\n" for r in results)


def flatten(record: dict, prefix: str = "", *, sort_keys: bool = False) -> dict:
    """``record`` with nested dicts spread into dotted keys (``{"dicom": {"modality": ..}}``
    becomes ``{"dicom.modality": ..}``), one CSV column (or ``info`` line) each; an empty dict
    stays a value. ``sort_keys`` orders the keys at every level (``pneumoscan info``)."""
    out = {}
    for key in sorted(record) if sort_keys else record:
        value = record[key]
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}.", sort_keys=sort_keys))
        else:
            out[f"{prefix}{key}"] = value
    return out


def csv_text(records: list[dict], columns: Sequence[str]) -> str:
    """``records`` as CSV with nested fields as dotted columns (:func:`flatten`): ``columns``
    first, in order, then every other key any record has, sorted. ``history`` exports with it too."""
    rows = [flatten(record) for record in records]
    extra = sorted({key for row in rows for key in row} - set(columns))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*columns, *extra], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def format_csv(results: list[Result]) -> str:
    return csv_text([r.to_dict() for r in results], CSV_COLUMNS)


def render(results: list[Result], fmt: str, positive_label: str = "PNEUMONIA") -> str:
    """``results`` as text in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        return format_table(results, positive_label)
    if fmt == "json":
        return format_json(results)
    if fmt == "jsonl":
        return format_jsonl(results)
    if fmt == "csv":
        return format_csv(results)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
