"""The pages a nurse uses: Screen, the results of a batch, one Result, the Worklist, About.

Server-rendered (Jinja templates in ``templates/``); they work without JavaScript, which only adds
per-file progress and drag-and-drop to the Screen page (``static/screen.js``). Pictures are found
by the content hash in the URL and the audit log's record, never by a path a client sends.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, send_file

from edge_app.audit_log import LogEntry
from edge_app.formatting import local_time, render_log
from edge_app.results import advice, pattern_shown
from edge_app.serve import worklist
from edge_app.serve.context import clinic, day_and_filter, day_entries, entry_or_404, fail, upload_name
from edge_app.serve.storage import UploadTooLarge, is_sha256

pages = Blueprint("pages", __name__)

#: Most films one ``/screened`` page lists.
MAX_BATCH = 200


def _band(result) -> tuple[float, float] | None:
    """The uncertain band a result was decided with, as far as this server knows it: its own
    operating point's, or the model's for a result decided at the model's threshold."""
    c = clinic()
    point = c.service.point
    if (result.threshold_source, result.threshold, result.site_profile) == (point.source, point.threshold, point.profile):
        return point.band
    if result.threshold_source in ("model", None) and result.threshold == c.contract.threshold:
        return c.contract.uncertain_band
    return None  # decided elsewhere (another site profile, a --threshold run): not known here


def _threshold_source(result) -> str:
    if result.threshold_source == "site":
        return f"this site's calibration (site profile {result.site_profile})"
    if result.threshold_source == "option":
        return "set for one run (--threshold)"
    if result.threshold_source == "model" or result.threshold == clinic().contract.threshold:
        return "the model's own (chosen on validation)"
    return "not recorded"


def _score_bar(entry: LogEntry, band: tuple[float, float] | None) -> dict:
    """Positions (0-100) for the score bar: the score, the threshold, the uncertain band."""
    threshold = entry.result.threshold or clinic().service.point.threshold
    return {
        "score": entry.result.score,
        "threshold": round(100 * threshold, 1),
        "band": None if band is None else (round(100 * band[0], 1), round(100 * (band[1] - band[0]), 1)),
    }


def _heatmap_file(entry: LogEntry) -> Path | None:
    """The heatmap the log records for this entry, if it is one of the server's own pictures."""
    recorded = entry.result.extra.get("heatmap")
    if recorded and clinic().service.store.inside(recorded) and Path(recorded).is_file():
        return Path(recorded)
    return None


def _line(entry: LogEntry) -> str:
    """The nurse's line: ``predict``'s words for the result."""
    if entry.status == "pending":
        return "Being screened (or interrupted): look again in a moment."
    return advice(entry.result, clinic().positive, _pattern_display())


def _pattern_display() -> dict[str, str] | None:
    """A pattern model's own words for its patterns (None for a two-class model)."""
    pattern = clinic().contract.pattern
    return pattern.display if pattern else None


def _batch(entries: list[tuple[str, str, LogEntry | None]]) -> str:
    """The results page for ``(name, sha256, entry)`` triples."""
    positive = clinic().positive
    items = [
        {
            "name": name,
            "sha256": sha256,
            "category": worklist.category(entry, positive) if entry else "pending",
            "line": _line(entry) if entry else "Not found in the audit log.",
        }
        for name, sha256, entry in entries
    ]
    return render_template("screened.html", items=items)


@pages.get("/")
def screen():
    return render_template("screen.html", max_mb=clinic().settings.max_upload_bytes / 1e6)


@pages.post("/screen")
def screen_form():
    """The Screen form without JavaScript: every chosen file, then the list of results."""
    c = clinic()
    # An input left empty (the camera one, say) still sends a part, with no file name.
    files = [f for f in request.files.getlist("file") if f.filename]
    if not files:
        return fail(400, "no file in the upload: choose one or more films")
    entries = []
    for storage in files:
        name = upload_name(storage)
        try:
            screened = c.service.screen_upload(storage.stream, name, c.settings.max_upload_bytes)
        except UploadTooLarge as exc:
            return fail(413, f"{name}: {exc}")
        entries.append((name, screened.sha256, c.service.find(screened.sha256, c.service.model_version)))
    return _batch(entries)


@pages.get("/screened")
def screened():
    """The list of results the Screen page's script opens after a batch (``?film=SHA&name=..``)."""
    c = clinic()
    wanted = [s for s in request.args.getlist("film") if is_sha256(s)][:MAX_BATCH]
    names = request.args.getlist("name")
    entries = []
    for i, sha256 in enumerate(wanted):
        name = names[i][:200] if i < len(names) else sha256[:12]
        entries.append((name, sha256, c.service.find(sha256, c.service.model_version)))
    return _batch(entries)


@pages.get("/result/<sha256>")
def result(sha256: str):
    c = clinic()
    entry = entry_or_404(sha256)
    band = _band(entry.result)
    return render_template(
        "result.html",
        entry=entry,
        result=entry.result,
        name=worklist.shown_name(entry),
        line=_line(entry),
        category=worklist.category(entry, c.positive),
        bar=_score_bar(entry, band),
        band=band,
        threshold_source=_threshold_source(entry.result),
        screened_at=local_time(entry.created_at).replace("T", " ")[:16],
        has_view=c.service.store.view_path(sha256).is_file(),
        has_heatmap=_heatmap_file(entry) is not None,
        uploaded=c.service.store.film_path(sha256) is not None,
        dicom=entry.result.extra.get("dicom"),
        pattern=pattern_shown(entry.result, _pattern_display()),
    )


@pages.get("/result/<sha256>/film.jpeg")
def film_view(sha256: str):
    path = clinic().service.store.view_path(sha256) if is_sha256(sha256) else None
    if path is None or not path.is_file():
        abort(404, "no picture of this film is kept")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@pages.get("/result/<sha256>/heatmap.jpeg")
def heatmap_view(sha256: str):
    path = _heatmap_file(entry_or_404(sha256))
    if path is None:
        abort(404, "no heatmap of this film is kept")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@pages.get("/worklist")
def worklist_page():
    c = clinic()
    day, wanted = day_and_filter()
    everything = c.service.entries_for_day(day)
    rows = [
        {
            "entry": entry,
            "time": worklist.shown_time(entry),
            "category": worklist.category(entry, c.positive),
            "line": _line(entry),
            "name": worklist.shown_name(entry),
        }
        for entry in worklist.select(everything, wanted, c.positive, c.settings.with_ids)
    ]
    return render_template(
        "worklist.html",
        day=day.isoformat(),
        wanted=wanted,
        filters=worklist.FILTERS,
        counts=worklist.counts(everything, c.positive),
        rows=rows,
    )


@pages.get("/worklist.csv")
def worklist_csv():
    """The rows shown, as ``pneumoscan history --format csv`` writes them."""
    day, wanted = day_and_filter()
    suffix = "" if wanted == "all" else f"-{wanted}"
    return Response(
        render_log(day_entries(day, wanted), "csv"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="pneumoscan-{day.isoformat()}{suffix}.csv"'},
    )


@pages.get("/about")
def about():
    c = clinic()
    usage = shutil.disk_usage(c.settings.data)
    return render_template(
        "about.html",
        contract=c.contract,
        metadata=c.contract.raw,
        runtime=c.service.classifier.runtime,
        model_path=c.service.classifier.model_path,
        site=c.settings.site or {},
        point=c.service.point,
        settings=c.settings,
        disk_free_gb=usage.free / 1e9,
        disk_total_gb=usage.total / 1e9,
        python=sys.version.split()[0],
        gate=c.service.screener.gate is not None,
    )
