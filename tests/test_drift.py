"""``edge_app.drift``: per-day summary of the audit log, flagging days that refer an unusual share."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np

from edge_app.drift import render, summarise_by_day
from edge_app.operating_point import OperatingPoint

MODEL = "0.1.0+abcdefabcdef"
POINT = OperatingPoint(0.5, (0.4, 0.6), "site", "feedfacefeedface")


def _rows(day: int, n: int, share_referred: float, *, refused: int = 0, model: str = MODEL, seed: int = 0):
    """``n`` screened films on local noon of day ``day``, ``share_referred`` of them >= 0.5."""
    rng = np.random.default_rng(seed + day)
    noon = datetime(2026, 11, 1 + day, 12, 0).astimezone()  # local noon: same local day in any zone
    stamp = noon.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    k = int(round(share_referred * n))
    probabilities = np.r_[rng.uniform(0.51, 0.99, k), rng.uniform(0.01, 0.39, n - k)]
    rows = [
        {"created_at": stamp, "status": "done", "probability": float(p), "model_version": model,
         "label": "PNEUMONIA" if p >= 0.5 else "NORMAL", "error": None}
        for p in probabilities
    ]
    rows += [
        {"created_at": stamp, "status": "error", "probability": None, "model_version": model,
         "label": None, "error": "not a chest X-ray: too colourful"}
        for _ in range(refused)
    ]
    return rows


def test_a_day_referring_far_more_than_calibration_is_flagged_and_normal_days_are_not():
    rows = []
    for day in range(6):
        rows += _rows(day, 40, 0.70 if day == 3 else 0.30, refused=2 if day == 1 else 0)
    report = summarise_by_day(rows, POINT, MODEL, expected_share=(0.30, 0.25, 0.36))
    assert [d.day.day for d in report.days] == [1, 2, 3, 4, 5, 6]
    flags = {d.day.day: d.flag for d in report.days}
    assert flags == {1: None, 2: None, 3: None, 4: "high", 5: None, 6: None}
    day2 = report.days[1]
    assert (day2.images, day2.screened, day2.refused, day2.referred) == (42, 40, 2, 12)
    assert day2.median_score is not None and 0 < day2.median_score < 100
    low, high = report.days[3].expected
    assert low <= 12 <= high and report.days[3].referred == 28 > high


def test_a_quiet_day_is_flagged_low_and_tiny_days_are_not_flagged():
    rows = _rows(0, 60, 0.02) + _rows(1, 3, 0.0)
    report = summarise_by_day(rows, POINT, MODEL, expected_share=(0.30, 0.25, 0.36))
    assert [d.flag for d in report.days] == ["low", None]  # 0 of 3 is unremarkable at 30%


def test_counts_at_the_operating_point_not_at_the_stored_label():
    rows = _rows(0, 20, 0.5)
    stricter = OperatingPoint(0.9, None, "site", "x")
    report = summarise_by_day(rows, stricter, MODEL)
    assert report.days[0].referred == sum(r["probability"] >= 0.9 for r in rows)
    assert report.days[0].uncertain == 0


def test_other_models_and_unfinished_rows_are_left_out_and_said_so():
    rows = _rows(0, 10, 0.3) + _rows(0, 5, 0.3, model="0.1.0+000000000000")
    rows.append({**rows[0], "status": "pending", "probability": None})
    report = summarise_by_day(rows, POINT, MODEL)
    assert report.days[0].images == 10 and (report.other_models, report.pending) == (5, 1)
    text = render(report, "table")
    assert "5 result(s) of other models left out" in text and "1 unfinished left out" in text
    assert "No site profile: no expected range" in text


def test_formats_carry_the_same_days():
    rows = _rows(0, 30, 0.3) + _rows(1, 30, 0.8)
    report = summarise_by_day(rows, POINT, MODEL, expected_share=(0.3, 0.25, 0.36))
    data = json.loads(render(report, "json"))
    assert data["threshold_source"] == "site" and data["site_profile"] == POINT.profile
    assert [d["flag"] for d in data["days"]] == [None, "high"]
    csv = render(report, "csv").splitlines()
    assert csv[0].startswith("day,images,screened,refused,referred,share_referred") and len(csv) == 3
    table = render(report, "table")
    assert "more referred than expected" in table and "1 of 2 day(s) outside the expected range" in table


def test_no_rows():
    report = summarise_by_day([], POINT, MODEL, expected_share=(0.3, 0.25, 0.36))
    assert report.days == () and "No results recorded" in render(report, "table")
    assert render(report, "csv").strip() == "day"
