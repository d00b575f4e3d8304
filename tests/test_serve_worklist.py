"""edge_app.serve.worklist: categories, filters and hidden identifiers."""

from __future__ import annotations

from datetime import date

import pytest

from edge_app.audit_log import LogEntry
from edge_app.results import Result
from edge_app.serve.worklist import category, counts, parse_day, select, shown_name, without_identifiers


def row(status="done", label="NORMAL", uncertain=False, extra=None) -> LogEntry:
    result = Result("/data/films/ab.jpeg", label=label, uncertain=uncertain, extra=extra or {},
                    error="not an image" if status == "error" else None)
    return LogEntry(result, status, "2026-12-01T08:00:00+00:00", "v1", "ab" * 32, 10)


ROWS = [
    row(label="PNEUMONIA"),
    row(label="PNEUMONIA", uncertain=True),
    row(uncertain=True),
    row(),
    row(status="error", label=None, uncertain=None),
    row(status="pending", label=None, uncertain=None),
]


def test_each_row_falls_in_one_category() -> None:
    assert [category(r, "PNEUMONIA") for r in ROWS] == [
        "referred", "uncertain", "uncertain", "no-signs", "refused", "pending"
    ]
    assert counts(ROWS, "PNEUMONIA") == {
        "all": 6, "referred": 1, "uncertain": 2, "no-signs": 1, "refused": 1, "pending": 1
    }


def test_filters_pick_their_rows() -> None:
    assert select(ROWS, "uncertain", "PNEUMONIA", True) == ROWS[1:3]
    assert select(ROWS, "all", "PNEUMONIA", True) == ROWS
    with pytest.raises(ValueError, match="unknown filter"):
        select(ROWS, "everything", "PNEUMONIA", True)


def test_patient_identifiers_are_hidden_unless_asked_for() -> None:
    dicom = {"modality": "CR", "patient_name": "Doe^Jane", "patient_id": "123", "patient_birth_date": "20200101"}
    original = row(extra={"dicom": dict(dicom), "heatmap": "/x.png"})
    hidden = without_identifiers(original)
    assert hidden.result.extra == {"dicom": {"modality": "CR"}, "heatmap": "/x.png"}
    assert original.result.extra["dicom"] == dicom  # the entry read from the log is left as it was
    assert select([original], "all", "PNEUMONIA", with_ids=True) == [original]
    assert select([original], "all", "PNEUMONIA", with_ids=False) == [hidden]


def test_day_parsing() -> None:
    assert parse_day(None) == date.today()
    assert parse_day("2026-12-01") == date(2026, 12, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("yesterday-ish")


def test_a_film_is_shown_by_the_name_it_was_sent_under() -> None:
    assert shown_name(row()) == "ab.jpeg"
    assert shown_name(row(extra={"upload_name": "bed 4.jpeg"})) == "bed 4.jpeg"
