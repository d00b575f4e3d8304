"""``pneumoscan history``: the audit log as a table for a person, CSV for a register, JSON for programs.

Times are stored in UTC and shown in the device's local time with its offset, so an exported
sheet is unambiguous and still reads like the clinic's clock.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

from edge_app.audit_log import EXPORT_COLUMNS
from edge_app.formatting import csv_text

FORMATS = ("table", "csv", "json")

#: Paths longer than this don't widen the table for everybody.
MAX_PATH_WIDTH = 60


def parse_since(text: str) -> datetime:
    """``today``, ``yesterday``, ``2024-05-01`` or ``2024-05-01T08:00`` (local time unless an
    offset is given) as an aware datetime; ``ValueError`` with a usable message otherwise."""
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        day = date.today() - timedelta(days=word == "yesterday")
        return datetime.combine(day, time()).astimezone()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM, today or yesterday"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def local_time(stamp: str) -> str:
    """A stored UTC timestamp in local time, ISO-8601 with offset, to the second."""
    return datetime.fromisoformat(stamp).astimezone().isoformat(timespec="seconds")


def _outcome(row: dict) -> str:
    if row["status"] == "pending":
        return "not finished: being screened, or interrupted (a watch completes it while the file is in the inbox)"
    if row["status"] == "error":
        return f"could not screen: {row['error']}"
    return f"{row['label']}{' (uncertain)' if row['uncertain'] else ''}"


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "No results recorded in this period.\n"
    width = min(max(len(r["path"]) for r in rows), MAX_PATH_WIDTH)
    model_width = max(5, *(len(r["model_version"]) for r in rows))
    lines = [f"{'WHEN':<16}  {'IMAGE':<{width}}  SCORE  {'MODEL':<{model_width}}  RESULT"]
    for row in rows:
        when = local_time(row["created_at"])[:16].replace("T", " ")
        score = "" if row["score"] is None else str(row["score"])
        lines.append(
            f"{when:<16}  {row['path']:<{width}}  {score:>5}  "
            f"{row['model_version']:<{model_width}}  {_outcome(row)}"
        )
    lines += ["", f"{len(rows)} image{'s' if len(rows) != 1 else ''}, newest first."]
    return "\n".join(lines) + "\n"


def _export(row: dict) -> dict:
    """One flat record: the columns, then what ``extra`` holds (``heatmap``, ``dicom``)."""
    fields = {key: value for key, value in row.items() if key != "extra"}
    return {**fields, "created_at": local_time(row["created_at"]), **row["extra"]}


def format_csv(rows: list[dict]) -> str:
    # Nested fields become dotted columns (``dicom.modality``), exactly as ``predict`` writes them.
    return csv_text([_export(row) for row in rows], EXPORT_COLUMNS)


def format_json(rows: list[dict]) -> str:
    return json.dumps([_export(row) for row in rows], indent=2) + "\n"


def render(rows: list[dict], fmt: str) -> str:
    return {"table": format_table, "csv": format_csv, "json": format_json}[fmt](rows)
