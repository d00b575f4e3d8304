"""Output formats: a table for people, and json/jsonl/csv that programs can parse back."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pathlib import Path

from edge_app.formatting import CSV_COLUMNS, FORMATS, format_csv, format_json, format_table, render
from edge_app.results import Result

RESULTS = [
    Result("scans/a.jpeg", 0.91, 91, "PNEUMONIA", False, 0.5, "v1", 12.5),
    Result("scans/b.jpeg", 0.52, 52, "PNEUMONIA", True, 0.5, "v1", 11.0),
    Result("scans/c, with comma.png", 0.08, 8, "NORMAL", False, 0.5, "v1", 10.25),
    Result("scans/d.jpeg", error="empty file"),
]


def test_table_has_a_line_per_image_and_a_summary():
    text = render(RESULTS, "table")
    lines = text.splitlines()
    assert lines[0].split() == ["IMAGE", "RESULT"]
    assert "Signs of pneumonia likely (score 91/100)" in lines[1]
    assert "Uncertain \u2014 needs review by a clinician (score 52/100)" in lines[2]
    assert "No signs of pneumonia found (score 8/100)" in lines[3]
    assert lines[4].startswith("scans/d.jpeg") and "Could not screen: empty file" in lines[4]
    assert "4 images: 1 signs of pneumonia likely, 1 uncertain, 1 no signs found, 1 could not be screened." in text
    assert "Model v1, threshold 0.5 (model)" in text
    # the advice column starts at the same place on every line
    column = len("scans/c, with comma.png  ")
    assert all(line[column:].startswith(("Signs", "Uncertain", "No signs", "Could not")) for line in lines[1:5])


def test_table_of_nothing():
    assert render([], "table") == "No images to screen.\n"


def test_json_round_trips():
    rows = json.loads(render(RESULTS, "json"))
    assert rows == [r.to_dict() for r in RESULTS]
    assert rows[3] == {"path": "scans/d.jpeg", "error": "empty file"}


def test_jsonl_is_one_object_per_line():
    lines = render(RESULTS, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in RESULTS]


def test_csv_parses_with_fixed_columns_and_extras():
    extra = Result("e.jpeg", 0.3, 30, "NORMAL", False, 0.5, "v1", 9.0, extra={"heatmap": "h/e.png"})
    rows = list(csv.DictReader(io.StringIO(render([*RESULTS, extra], "csv"))))
    assert list(rows[0]) == [*CSV_COLUMNS, "heatmap"]
    assert rows[2]["path"] == "scans/c, with comma.png"
    assert rows[0]["probability"] == "0.91" and rows[0]["uncertain"] == "False"
    assert rows[3]["error"] == "empty file" and rows[3]["probability"] == ""
    assert rows[4]["heatmap"] == "h/e.png"


def test_unknown_format():
    assert set(FORMATS) == {"table", "json", "jsonl", "csv"}
    with pytest.raises(ValueError, match="unknown format"):
        render(RESULTS, "xml")


def test_csv_flattens_dicom_fields_into_dotted_columns():
    dicom = {"modality": "DX", "view_position": "PA", "bits_stored": 12}
    rows = list(csv.DictReader(io.StringIO(render([Result("f.dcm", 0.2, 20, "NORMAL", False, 0.5, "v1", 9.0, extra={"dicom": dicom})], "csv"))))
    assert rows[0]["dicom.modality"] == "DX" and rows[0]["dicom.bits_stored"] == "12"
    assert "dicom" not in rows[0]


def test_long_paths_keep_the_result_column_aligned():
    long = "clinic/2026-12-01/" + "x" * 70 + ".jpeg"
    results = [Result("a.jpeg", 0.9, 90, "PNEUMONIA", False, 0.5, "v1", 1.0), Result(long, error="empty file")]
    lines = render(results, "table").splitlines()
    column = lines[0].index("RESULT")
    assert lines[2] == long  # the whole path, on a line of its own
    assert lines[1][column:].startswith("Signs") and lines[3][column:].startswith("Could not screen")
    assert lines[3][:column].strip() == ""


def test_the_log_exports_a_result_in_the_same_layout_as_predict():
    """A film read back from the audit log has the CSV columns and JSON fields ``predict`` wrote."""
    from edge_app.audit_log import LogEntry
    from edge_app.formatting import LOG_COLUMNS, render_log

    result = Result("f.dcm", 0.2, 20, "NORMAL", False, 0.5, "v1", 9.0, extra={"dicom": {"modality": "DX"}})
    failed = Result("bad.jpeg", error="empty file")
    entries = [
        LogEntry(r, "done" if r.ok else "error", "2026-12-01T08:00:00+00:00", "v1", "ab" * 32, 10)
        for r in (result, failed)
    ]
    predicted = list(csv.DictReader(io.StringIO(render([result, failed], "csv"))))
    logged = list(csv.DictReader(io.StringIO(render_log(entries, "csv"))))
    assert list(logged[0]) == [*list(predicted[0])[: len(CSV_COLUMNS)], *LOG_COLUMNS, *list(predicted[0])[len(CSV_COLUMNS):]]
    for mine, theirs in zip(logged, predicted):
        assert {k: mine[k] for k in theirs if k != "model_version"} == {k: v for k, v in theirs.items() if k != "model_version"}
    assert logged[1]["model_version"] == "v1"  # the log keeps the model a failure was tried under
    as_json = json.loads(render_log(entries, "json"))
    assert {k: as_json[0][k] for k in result.to_dict()} == json.loads(render([result], "json"))[0]
    assert as_json[0]["status"] == "done" and as_json[1]["error"] == "empty file"


HOSTILE_NAME = "x.jpeg\nok.jpeg  No signs of pneumonia found (score 1/100)\r\x1b[2K\x1b]0;pwned\x07\u202egpj.exe\u200b"


def test_untrusted_names_cannot_forge_a_row_or_reach_the_terminal_raw():
    from edge_app.formatting import printable

    results = [Result(path=HOSTILE_NAME, error="not an image Pillow can read"), Result(path="b.jpeg", error="empty file")]
    table = format_table(results)
    lines = table.splitlines()
    assert len(lines) == 1 + 3 + 2  # header, the long name's line + its result, b, blank, summary
    assert all(not any(c in line for c in "\r\x1b\x07\u202e\u200b") for line in lines)
    assert "No signs of pneumonia found" in lines[1] and lines[1].startswith("x.jpeg\\nok.jpeg")
    assert printable("a\\b\n") == "a\\\\b\\n"  # unambiguous: a real backslash is doubled
    assert printable("Zoë 陈.jpeg") == "Zoë 陈.jpeg"  # ordinary letters stay as they are
    # JSON stays exact; CSV quotes every line break, a lone carriage return too.
    assert json.loads(format_json(results))[0]["path"] == HOSTILE_NAME
    rows = list(csv.reader(io.StringIO(format_csv(results), newline="")))
    assert rows[1][0] == HOSTILE_NAME and len(rows) == 3
    assert format_csv([Result(path="a\rb", error="e")]).splitlines()[1].startswith('"a')


def test_terminal_messages_are_escaped(tmp_path):
    from typer.testing import CliRunner

    from edge_app.cli import app

    bad = tmp_path / "a\x1b[31m\nb.jpeg"
    bad.write_text("not an image")
    done = CliRunner().invoke(app, ["predict", str(bad), "-f", "json", "--model", str(Path(__file__).parent / "data" / "tiny-int8.tflite")])
    assert done.exit_code == 1
    assert "\x1b" not in done.stderr and "a\\x1b[31m\\nb.jpeg: not an image" in done.stderr
    assert json.loads(done.stdout)[0]["path"] == str(bad)


def test_pattern_fields_follow_the_fixed_columns_in_predict_and_history():
    from edge_app.audit_log import LogEntry
    from edge_app.formatting import LOG_COLUMNS, PATTERN_COLUMNS, render_log

    positive = Result("p.jpeg", 0.9, 90, "PNEUMONIA", False, 0.5, "v2", 9.0,
                      extra={"pattern": "viral", "pattern_score": 72, "heatmap": "h.png"})
    negative = Result("n.jpeg", 0.1, 10, "NORMAL", False, 0.5, "v2", 9.0, extra={"pattern": None, "pattern_score": None})
    rows = list(csv.DictReader(io.StringIO(render([positive, negative], "csv"))))
    assert list(rows[0]) == [*CSV_COLUMNS, *PATTERN_COLUMNS, "heatmap"]
    assert (rows[0]["pattern"], rows[0]["pattern_score"]) == ("viral", "72")
    assert rows[1]["pattern"] == ""
    table = render([positive, negative], "table")
    assert "pattern more like viral pneumonia (72/100)" in table and table.count("pattern more like") == 1
    entries = [LogEntry(r, "done", "2026-12-01T08:00:00+00:00", "v2", "cd" * 32, 10) for r in (positive, negative)]
    logged = list(csv.DictReader(io.StringIO(render_log(entries, "csv"))))
    assert list(logged[0]) == [*CSV_COLUMNS, *PATTERN_COLUMNS, *LOG_COLUMNS, "heatmap"]
    assert json.loads(render_log(entries, "json"))[0]["pattern_score"] == 72
    assert "pattern viral 72/100" in render_log(entries, "table")
