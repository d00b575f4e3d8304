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

from edge_app.history import format_csv, local_time
from edge_app.results import advice
from edge_app.serve import worklist
from edge_app.serve.context import clinic, day_and_filter, day_rows, fail, row_or_404, upload_name
from edge_app.serve.service import result_from_row
from edge_app.serve.storage import UploadTooLarge, is_sha256

pages = Blueprint("pages", __name__)

#: Most films one ``/screened`` page lists.
MAX_BATCH = 200


def _score_bar(row: dict, contract) -> dict:
    """Positions (0-100) for the score bar: the score, the threshold, the uncertain band."""
    threshold = row.get("threshold") or contract.threshold
    band = contract.uncertain_band
    return {
        "score": row.get("score"),
        "threshold": round(100 * threshold, 1),
        "band": None if band is None else (round(100 * band[0], 1), round(100 * (band[1] - band[0]), 1)),
    }


def _heatmap_file(row: dict) -> Path | None:
    """The heatmap the log records for this row, if it is one of the server's own pictures."""
    recorded = (row.get("extra") or {}).get("heatmap")
    if recorded and clinic().service.store.inside(recorded) and Path(recorded).is_file():
        return Path(recorded)
    return None


def _batch(entries: list[tuple[str, str, dict | None]]) -> str:
    """The results page for ``(name, sha256, row)`` entries."""
    positive = clinic().positive
    items = []
    for name, sha256, row in entries:
        result = result_from_row(row, name) if row else None
        items.append({
            "name": name,
            "sha256": sha256,
            "category": worklist.category(row, positive) if row else "pending",
            "line": advice(result, positive) if result else "Not found in the audit log.",
        })
    return render_template("screened.html", items=items)


@pages.get("/")
def screen():
    return render_template("screen.html", max_mb=clinic().settings.max_upload_bytes / 1e6)


@pages.post("/screen")
def screen_form():
    """The Screen form without JavaScript: every chosen file, then the list of results."""
    c = clinic()
    files = [f for f in request.files.getlist("file") if f is not None and (f.filename or f.content_length)]
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
    row = row_or_404(sha256)
    shown = result_from_row(row, Path(row["path"]).name)
    return render_template(
        "result.html",
        row=row,
        result=shown,
        line=advice(shown, c.positive),
        category=worklist.category(row, c.positive),
        bar=_score_bar(row, c.contract),
        band=c.contract.uncertain_band,
        contract_threshold=c.contract.threshold,
        screened_at=local_time(row["created_at"]).replace("T", " ")[:16],
        has_view=c.service.store.view_path(sha256).is_file(),
        has_heatmap=_heatmap_file(row) is not None,
        uploaded=c.service.store.film_path(sha256) is not None,
        dicom=(row.get("extra") or {}).get("dicom"),
    )


@pages.get("/result/<sha256>/film.jpeg")
def film_view(sha256: str):
    path = clinic().service.store.view_path(sha256) if is_sha256(sha256) else None
    if path is None or not path.is_file():
        abort(404, "no picture of this film is kept")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@pages.get("/result/<sha256>/heatmap.jpeg")
def heatmap_view(sha256: str):
    path = _heatmap_file(row_or_404(sha256))
    if path is None:
        abort(404, "no heatmap of this film is kept")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@pages.get("/worklist")
def worklist_page():
    c = clinic()
    day, wanted = day_and_filter()
    rows = c.service.rows_for_day(day)
    shown = worklist.select(rows, wanted, c.positive, c.settings.with_ids)
    entries = [
        {
            "row": row,
            "time": worklist.shown_time(row),
            "category": worklist.category(row, c.positive),
            "line": advice(result_from_row(row, row["path"]), c.positive),
            "name": (row.get("extra") or {}).get("upload_name") or Path(row["path"]).name,
        }
        for row in shown
    ]
    return render_template(
        "worklist.html",
        day=day.isoformat(),
        wanted=wanted,
        filters=worklist.FILTERS,
        counts=worklist.counts(rows, c.positive),
        entries=entries,
    )


@pages.get("/worklist.csv")
def worklist_csv():
    """The rows shown, as ``pneumoscan history --format csv`` writes them."""
    day, wanted = day_and_filter()
    suffix = "" if wanted == "all" else f"-{wanted}"
    return Response(
        format_csv(day_rows(day, wanted)),
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
        site_profile=c.contract.raw.get("site_profile"),
        settings=c.settings,
        disk_free_gb=usage.free / 1e9,
        disk_total_gb=usage.total / 1e9,
        python=sys.version.split()[0],
        gate=c.service.screener.gate is not None,
    )
