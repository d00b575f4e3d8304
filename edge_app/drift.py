"""Day by day from the audit log: is the device still referring the share calibration expected?

WHO's guidance for computer-aided chest X-ray reading asks a site to monitor the share of films
flagged after go-live: a new X-ray unit, a change of exposure or framing, another patient mix
moves the scores long before anyone counts missed cases. For each local day this reports the
images seen, how many could not be screened (refused by the input gate or unreadable), and for
the screened ones the share referred and uncertain and the median score, then compares the
referred count with the range calibration predicts for that many films.

The comparison is at one operating point (the site profile's, else the model's) recomputed from
each stored probability, so days screened before and after a profile was installed are measured
on the same ruler. Only rows of the model the operating point belongs to count: another model's
scores are another scale. The expected range is an exact binomial range for the day's count at
the calibration's share referred, taken over that share's own 95% interval (the calibration
sample was finite too): a day outside it would happen by chance less than 1 time in 40 if
nothing had changed. It is a prompt for a supervisor to look, not proof that anything is wrong.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from edge_app.formatting import csv_text
from edge_app.intervals import binomial_range
from edge_app.operating_point import OperatingPoint


@dataclass(frozen=True)
class DaySummary:
    day: date
    images: int
    screened: int
    referred: int
    uncertain: int
    refused: int
    median_score: float | None
    expected: tuple[int, int] | None  # the unsurprising range of ``referred`` for ``screened`` films

    @property
    def share_referred(self) -> float | None:
        return self.referred / self.screened if self.screened else None

    @property
    def share_uncertain(self) -> float | None:
        return self.uncertain / self.screened if self.screened else None

    @property
    def flag(self) -> str | None:
        """``"high"`` or ``"low"`` when the referred count leaves the expected range."""
        if self.expected is None or not self.screened:
            return None
        low, high = self.expected
        return "high" if self.referred > high else "low" if self.referred < low else None

    def to_dict(self) -> dict:
        r = lambda x: None if x is None else round(x, 4)  # noqa: E731
        return {
            "day": self.day.isoformat(),
            "images": self.images,
            "screened": self.screened,
            "refused": self.refused,
            "referred": self.referred,
            "share_referred": r(self.share_referred),
            "uncertain": self.uncertain,
            "share_uncertain": r(self.share_uncertain),
            "median_score": r(self.median_score),
            "expected_referred_low": None if self.expected is None else self.expected[0],
            "expected_referred_high": None if self.expected is None else self.expected[1],
            "flag": self.flag,
        }


@dataclass(frozen=True)
class DriftReport:
    days: tuple[DaySummary, ...]
    point: OperatingPoint
    model_version: str
    expected_share: tuple[float, float, float] | None  # (value, low, high) from calibration
    other_models: int  # rows left out: scored by another model
    pending: int  # rows left out: not finished

    @property
    def flagged(self) -> list[DaySummary]:
        return [d for d in self.days if d.flag]


def _local_day(stamp: str) -> date:
    return datetime.fromisoformat(stamp).astimezone().date()


def summarise_by_day(
    rows: list[dict],
    point: OperatingPoint,
    model_version: str,
    expected_share: tuple[float, float, float] | None = None,
) -> DriftReport:
    """Per local day, oldest first, from audit-log rows (``AuditLog.rows()``: ``created_at``,
    ``status``, ``probability``, ``model_version``)."""
    groups: dict[date, list[dict]] = defaultdict(list)
    other = pending = 0
    for row in rows:
        if row["model_version"] != model_version:
            other += 1
        elif row["status"] == "pending":
            pending += 1
        else:
            groups[_local_day(row["created_at"])].append(row)
    days = []
    for day in sorted(groups):
        done = [row["probability"] for row in groups[day] if row["status"] == "done" and row["probability"] is not None]
        referred = sum(1 for p in done if p >= point.threshold)
        expected = None
        if expected_share is not None and done:
            expected = binomial_range(len(done), expected_share[1], expected_share[2])
        days.append(
            DaySummary(
                day=day,
                images=len(groups[day]),
                screened=len(done),
                referred=referred,
                uncertain=sum(1 for p in done if point.uncertain(p)),
                refused=len(groups[day]) - len(done),
                median_score=100 * statistics.median(done) if done else None,
                expected=expected,
            )
        )
    return DriftReport(tuple(days), point, model_version, expected_share, other, pending)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def format_table(report: DriftReport) -> str:
    point = report.point
    source = f"site profile {point.profile}" if point.source == "site" else f"the {point.source}'s"
    lines = [f"Model {report.model_version}, threshold {point.threshold:.4f} ({source})."]
    if report.expected_share is None:
        lines.append("No site profile: no expected range to compare with (run pneumoscan calibrate).")
    else:
        value, low, high = report.expected_share
        lines.append(f"Calibration referred {_pct(value)} (95% interval {_pct(low)}-{_pct(high)}) of its films.")
    lines.append("")
    if not report.days:
        lines.append("No results recorded in this period.")
        return "\n".join(lines) + "\n"
    lines.append(f"{'DAY':<10}  {'IMAGES':>6}  {'REFUSED':>7}  {'REFERRED':>13}  {'EXPECTED':>8}  {'UNCERTAIN':>9}  {'MEDIAN':>6}  FLAG")
    for d in report.days:
        expected = "" if d.expected is None else f"{d.expected[0]}-{d.expected[1]}"
        median = "" if d.median_score is None else f"{d.median_score:.0f}"
        flag = {"high": "more referred than expected", "low": "fewer referred than expected"}.get(d.flag or "", "")
        lines.append(
            f"{d.day.isoformat():<10}  {d.images:>6}  {d.refused:>7}  {d.referred:>5} ({_pct(d.share_referred):>4})  "
            f"{expected:>8}  {_pct(d.share_uncertain):>9}  {median:>6}  {flag}"
        )
    lines.append("")
    notes = []
    if report.other_models:
        notes.append(f"{report.other_models} result(s) of other models left out")
    if report.pending:
        notes.append(f"{report.pending} unfinished left out")
    flagged = report.flagged
    summary = f"{len(flagged)} of {len(report.days)} day(s) outside the expected range" if report.expected_share else f"{len(report.days)} day(s)"
    lines.append("; ".join([summary, *notes]) + ".")
    if flagged:
        lines.append("A flagged day is a prompt to look (new unit or settings? different patients?), not proof of a fault.")
    return "\n".join(lines) + "\n"


def render(report: DriftReport, fmt: str) -> str:
    records = [d.to_dict() for d in report.days]
    if fmt == "table":
        return format_table(report)
    if fmt == "csv":
        return csv_text(records, list(records[0]) if records else ["day"])
    if fmt == "json":
        return json.dumps(
            {
                "model_version": report.model_version,
                "threshold": report.point.threshold,
                "threshold_source": report.point.source,
                "site_profile": report.point.profile,
                "expected_share_referred": None if report.expected_share is None else list(report.expected_share),
                "left_out": {"other_models": report.other_models, "pending": report.pending},
                "days": records,
            },
            indent=2,
        ) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
