"""edge_app.serve.worklist: categories, filters and hidden identifiers."""

from __future__ import annotations

from datetime import date

import pytest

from edge_app.serve.worklist import category, counts, parse_day, select, without_identifiers


def row(status="done", label="NORMAL", uncertain=False, extra=None) -> dict:
    return {"status": status, "label": label, "uncertain": uncertain, "extra": extra or {}}


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
    assert hidden["extra"] == {"dicom": {"modality": "CR"}, "heatmap": "/x.png"}
    assert original["extra"]["dicom"] == dicom  # the row read from the log is left as it was
    assert select([original], "all", "PNEUMONIA", with_ids=True) == [original]
    assert select([original], "all", "PNEUMONIA", with_ids=False) == [hidden]


def test_day_parsing() -> None:
    assert parse_day(None) == date.today()
    assert parse_day("2026-12-01") == date(2026, 12, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("yesterday-ish")
