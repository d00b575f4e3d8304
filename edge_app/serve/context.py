"""What every route needs: the server's settings and screening service, and a few request helpers.

The app factory stores one :class:`Clinic` in ``app.extensions``; routes reach it with
:func:`clinic`, so the blueprints need no globals and a test can build several apps side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flask import abort, current_app, jsonify, render_template, request

from edge_app.audit_log import LogEntry
from edge_app.serve import auth, worklist
from edge_app.serve.service import ScreeningService
from edge_app.serve.storage import is_sha256

EXTENSION = "pneumoscan"


@dataclass(frozen=True)
class Settings:
    """What the server was started with (shown on About, used by the routes)."""

    host: str
    port: int
    db: Path
    data: Path
    max_upload_bytes: int
    with_ids: bool = False
    password_hash: str | None = None
    #: :func:`edge_app.site_profile.describe_active`: the profile in use, or why none is.
    site: dict | None = None


@dataclass
class Clinic:
    service: ScreeningService
    settings: Settings
    throttle: auth.LoginThrottle = field(default_factory=auth.LoginThrottle)

    @property
    def contract(self):
        return self.service.classifier.contract

    @property
    def positive(self) -> str:
        return self.contract.positive_label


def clinic() -> Clinic:
    return current_app.extensions[EXTENSION]


def wants_json() -> bool:
    return request.path.startswith("/api/")


def fail(status: int, message: str):
    """One line for the person or program that asked: JSON ``{"error"}`` for the API, else a page."""
    if wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, message=message), status


def upload_name(storage) -> str:
    """The name a client sent a file under, reduced to its last component (only ever shown)."""
    name = (storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload"


def day_and_filter() -> tuple[date, str]:
    """``?date=YYYY-MM-DD&filter=...`` (today, all), or a 400 saying what is wrong."""
    try:
        day = worklist.parse_day(request.args.get("date"))
    except ValueError as exc:
        abort(400, str(exc))
    wanted = request.args.get("filter", "all")
    if wanted not in worklist.FILTERS:
        abort(400, f"unknown filter {wanted!r}; one of {', '.join(worklist.FILTERS)}")
    return day, wanted


def day_entries(day: date, wanted: str) -> list[LogEntry]:
    """What a worklist shows: the day's entries, filtered, identifiers removed unless ``--with-ids``."""
    c = clinic()
    return worklist.select(c.service.entries_for_day(day), wanted, c.positive, c.settings.with_ids)


def entry_or_404(sha256: str) -> LogEntry:
    """The audit-log entry of a film (this model's, else the newest), identifiers removed unless
    ``--with-ids``; 404 if the text is not a SHA-256 or no film has that content."""
    c = clinic()
    if not is_sha256(sha256):
        abort(404, "no film with this content in the audit log")
    entry = c.service.find(sha256, c.service.model_version) or c.service.find(sha256)
    if entry is None:
        abort(404, "no film with this content in the audit log")
    return entry if c.settings.with_ids else worklist.without_identifiers(entry)
