"""The Flask app: the pages a nurse uses, the JSON API behind them, and the security around both.

Pages (server-rendered Jinja; the page works without JavaScript, which only adds per-file
progress and drag-and-drop): ``/`` Screen, ``/screened`` the results of one batch,
``/result/<sha256>`` one film (with a print view through print CSS), ``/worklist`` a day's films,
``/about`` the model and the device. API: ``POST /api/screen``, ``GET /api/worklist``,
``GET /api/session`` (a CSRF token for scripts). docs/serve.md describes them.

Every state-changing request (the upload form, the API upload, login, logout) needs the session's
CSRF token (Flask-WTF), so another web page open in the same browser cannot post films into the
audit log, loopback or not. With a password set, every page but the login needs a logged-in
session. Responses carry a Content-Security-Policy that allows this origin only, no inline script
and no framing; pages and API answers are marked ``no-store`` (they show patients' results).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_file, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import edge_app
from edge_app.audit_log import AuditLogError
from edge_app.formatting import DISCLAIMER
from edge_app.history import format_csv, format_json, local_time
from edge_app.results import advice
from edge_app.serve import auth, worklist
from edge_app.serve.service import ScreeningService, result_from_row
from edge_app.serve.storage import UploadTooLarge, is_sha256

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: Endpoints reachable without logging in (with a password set).
PUBLIC_ENDPOINTS = {"login", "static"}

#: Keys the server adds to a result for its own record: the heatmap's path on the device (the
#: page links pictures by content hash instead) and the name the file was first sent under. The
#: API answers without them, so its object is ``predict --format json``'s.
SERVER_KEYS = ("heatmap", "upload_name")

#: Most films one ``/screened`` page lists.
MAX_BATCH = 200


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


def api_record(result) -> dict:
    """The API's JSON for a result: ``predict --format json``'s object for the same film (without
    the device-side heatmap path, which ``predict`` too only gives with ``--heatmap``)."""
    record = result.to_dict()
    for key in SERVER_KEYS:
        record.pop(key, None)
    return record


def _upload_name(storage) -> str:
    """The name a client sent a file under, reduced to its last component (only ever echoed)."""
    name = (storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload"


def _score_bar(row: dict, contract) -> dict:
    """Positions (0-100) for the score bar: the score, the threshold, the uncertain band."""
    threshold = row.get("threshold") or contract.threshold
    band = contract.uncertain_band
    return {
        "score": row.get("score"),
        "threshold": round(100 * threshold, 1),
        "band": None if band is None else (round(100 * band[0], 1), round(100 * (band[1] - band[0]), 1)),
    }


def create_app(service: ScreeningService, settings: Settings) -> Flask:
    """The WSGI app for ``service``; :mod:`edge_app.serve.server` runs it under waitress."""
    app = Flask(__name__)
    app.json.sort_keys = False  # keep predict's key order
    app.config.update(
        SECRET_KEY=auth.secret_key(settings.data),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024,  # the multipart framing
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="pneumoscan_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,  # a clinic day
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session: a page left open all morning still works
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        TEMPLATES_AUTO_RELOAD=False,
    )
    CSRFProtect(app)
    throttle = auth.LoginThrottle()
    contract = service.classifier.contract
    positive = contract.positive_label

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    def fail(status: int, message: str):
        if wants_json():
            return jsonify(error=message), status
        return render_template("error.html", status=status, message=message), status

    @app.context_processor
    def _globals() -> dict:
        return {
            "csrf_token": generate_csrf,
            "disclaimer": DISCLAIMER,
            "app_version": edge_app.__version__,
            "model_version": service.model_version,
            "password_set": settings.password_hash is not None,
            "logged_in": session.get("auth") is not None,
        }

    # --- security -------------------------------------------------------------------------

    @app.before_request
    def _require_login():
        if settings.password_hash is None or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if auth.same_fingerprint(session.get("auth"), auth.fingerprint(settings.password_hash)):
            return None
        if wants_json():
            return jsonify(error="log in first (POST /login with the clinic password)"), 401
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return fail(400, f"refused: {exc.description} Reload the page and try again.")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        return fail(413, f"upload larger than the limit of {settings.max_upload_bytes / 1e6:g} MB")

    @app.errorhandler(AuditLogError)
    def _log_unusable(exc: AuditLogError):
        print(f"pneumoscan: error: {exc}", file=sys.stderr)
        return fail(503, f"{exc}. Nothing was recorded; the server is still running")

    @app.errorhandler(OSError)
    def _disk(exc: OSError):
        print(f"pneumoscan: error: {request.method} {request.path}: {exc}", file=sys.stderr)
        return fail(507, f"cannot store the upload under --data: {exc.strerror or exc}")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return fail(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        print(f"pneumoscan: error: {request.method} {request.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return fail(500, f"the server could not finish this request ({type(exc).__name__}); it is still running")

    # --- login ----------------------------------------------------------------------------

    def _safe_next(target: str | None) -> str:
        parts = urlsplit(target or "")
        if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
            return url_for("screen")
        return target

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if settings.password_hash is None:
            return redirect(url_for("screen"))
        message, status = None, 200
        if request.method == "POST":
            wait = throttle.wait_seconds()
            if wait > 0:
                message, status = f"Too many wrong passwords: wait {int(wait) + 1} s and try again.", 429
            elif auth.check_password(settings.password_hash, request.form.get("password", "")):
                session.clear()
                session.permanent = True
                session["auth"] = auth.fingerprint(settings.password_hash)
                return redirect(_safe_next(request.form.get("next")))
            else:
                throttle.failed()
                message, status = "Wrong password.", 401
        return render_template("login.html", message=message, next=request.values.get("next", "")), status

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login") if settings.password_hash else url_for("screen"))

    # --- pages ----------------------------------------------------------------------------

    @app.get("/")
    def screen():
        return render_template("screen.html", max_mb=settings.max_upload_bytes / 1e6)

    def _batch(entries: list[tuple[str, str, dict | None]]) -> str:
        """The results page for ``(name, sha256, row)`` entries."""
        items = []
        for name, sha256, row in entries:
            result = result_from_row(row, name) if row else None
            items.append(
                {
                    "name": name,
                    "sha256": sha256,
                    "category": worklist.category(row, positive) if row else "pending",
                    "line": advice(result, positive) if result else "Not found in the audit log.",
                }
            )
        return render_template("screened.html", items=items)

    @app.post("/screen")
    def screen_form():
        files = [f for f in request.files.getlist("file") if f is not None]
        if not files:
            return fail(400, "no file in the upload: choose one or more films")
        entries = []
        for storage in files:
            name = _upload_name(storage)
            try:
                screened = service.screen_upload(storage.stream, name, settings.max_upload_bytes)
            except UploadTooLarge as exc:
                return fail(413, f"{name}: {exc}")
            entries.append((name, screened.sha256, service.find(screened.sha256, service.model_version)))
        return _batch(entries)

    @app.get("/screened")
    def screened():
        wanted = [s for s in request.args.getlist("film") if is_sha256(s)][:MAX_BATCH]
        names = request.args.getlist("name")
        entries = []
        for i, sha256 in enumerate(wanted):
            name = names[i][:200] if i < len(names) else sha256[:12]
            entries.append((name, sha256, service.find(sha256, service.model_version)))
        return _batch(entries)

    def _row_or_404(sha256: str) -> dict:
        row = service.find(sha256, service.model_version) if is_sha256(sha256) else None
        if row is None and is_sha256(sha256):
            row = service.find(sha256)
        if row is None:
            abort(404, "no film with this content in the audit log")
        return row if settings.with_ids else worklist.without_identifiers(row)

    @app.get("/result/<sha256>")
    def result(sha256: str):
        row = _row_or_404(sha256)
        shown = result_from_row(row, Path(row["path"]).name)
        uploaded = service.store.film_path(sha256) is not None
        return render_template(
            "result.html",
            row=row,
            result=shown,
            line=advice(shown, positive),
            category=worklist.category(row, positive),
            bar=_score_bar(row, contract),
            band=contract.uncertain_band,
            contract_threshold=contract.threshold,
            screened_at=local_time(row["created_at"]).replace("T", " ")[:16],
            has_view=service.store.view_path(sha256).is_file(),
            has_heatmap=_heatmap_file(row) is not None,
            uploaded=uploaded,
            dicom=(row.get("extra") or {}).get("dicom"),
        )

    def _heatmap_file(row: dict) -> Path | None:
        recorded = (row.get("extra") or {}).get("heatmap")
        if recorded and service.store.inside(recorded) and Path(recorded).is_file():
            return Path(recorded)
        return None

    @app.get("/result/<sha256>/film.jpeg")
    def film_view(sha256: str):
        path = service.store.view_path(sha256) if is_sha256(sha256) else None
        if path is None or not path.is_file():
            abort(404, "no picture of this film is kept")
        return send_file(path, mimetype="image/jpeg", max_age=0)

    @app.get("/result/<sha256>/heatmap.jpeg")
    def heatmap_view(sha256: str):
        path = _heatmap_file(_row_or_404(sha256))
        if path is None:
            abort(404, "no heatmap of this film is kept")
        return send_file(path, mimetype="image/jpeg", max_age=0)

    def _day_and_filter() -> tuple:
        try:
            day = worklist.parse_day(request.args.get("date"))
        except ValueError as exc:
            abort(400, str(exc))
        wanted = request.args.get("filter", "all")
        if wanted not in worklist.FILTERS:
            abort(400, f"unknown filter {wanted!r}; one of {', '.join(worklist.FILTERS)}")
        return day, wanted

    @app.get("/worklist")
    def worklist_page():
        day, wanted = _day_and_filter()
        rows = service.rows_for_day(day)
        shown = worklist.select(rows, wanted, positive, settings.with_ids)
        entries = [
            {
                "row": row,
                "time": worklist.shown_time(row),
                "category": worklist.category(row, positive),
                "line": advice(result_from_row(row, row["path"]), positive),
                "name": (row.get("extra") or {}).get("upload_name") or Path(row["path"]).name,
            }
            for row in shown
        ]
        return render_template(
            "worklist.html",
            day=day.isoformat(),
            wanted=wanted,
            filters=worklist.FILTERS,
            counts=worklist.counts(rows, positive),
            entries=entries,
        )

    @app.get("/worklist.csv")
    def worklist_csv():
        day, wanted = _day_and_filter()
        rows = worklist.select(service.rows_for_day(day), wanted, positive, settings.with_ids)
        suffix = "" if wanted == "all" else f"-{wanted}"
        return Response(
            format_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="pneumoscan-{day.isoformat()}{suffix}.csv"'},
        )

    @app.get("/about")
    def about():
        usage = shutil.disk_usage(settings.data)
        return render_template(
            "about.html",
            contract=contract,
            metadata=contract.raw,
            runtime=service.classifier.runtime,
            model_path=service.classifier.model_path,
            site_profile=contract.raw.get("site_profile"),
            settings=settings,
            disk_free_gb=usage.free / 1e9,
            disk_total_gb=usage.total / 1e9,
            python=sys.version.split()[0],
            gate=service.screener.gate is not None,
        )

    # --- API ------------------------------------------------------------------------------

    @app.post("/api/screen")
    def api_screen():
        storage = request.files.get("file")
        if storage is None:
            abort(400, "no file in the upload: send one film as the multipart field 'file'")
        name = _upload_name(storage)
        try:
            screened = service.screen_upload(storage.stream, name, settings.max_upload_bytes)
        except UploadTooLarge as exc:
            abort(413, f"{name}: {exc}")
        status = 422 if not screened.result.ok else (201 if screened.new else 200)
        response = jsonify(api_record(screened.result))
        response.status_code = status
        response.headers["Content-Location"] = url_for("result", sha256=screened.sha256)
        return response

    @app.get("/api/worklist")
    def api_worklist():
        day, wanted = _day_and_filter()
        rows = worklist.select(service.rows_for_day(day), wanted, positive, settings.with_ids)
        return Response(format_json(rows), mimetype="application/json")

    @app.get("/api/session")
    def api_session():
        return jsonify(csrf_token=generate_csrf())

    return app
