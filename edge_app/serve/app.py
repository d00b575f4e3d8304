"""The Flask app factory, and the security around every route: login, CSRF, headers, errors.

- Routes: :mod:`edge_app.serve.pages` (what the nurse sees) and :mod:`edge_app.serve.api` (JSON).
- Every state-changing request (the upload form, the API upload, login, logout) needs the
  session's CSRF token (Flask-WTF), so another web page open in the same browser cannot post
  films into the audit log, loopback or not.
- With a password set, every route but the login page and the static files needs a logged-in
  session whose password fingerprint is the current one.
- Every answer carries a Content-Security-Policy allowing this origin only (no inline script, no
  framing) and the other headers in :data:`SECURITY_HEADERS`; pages and API answers are
  ``no-store`` (they show patients' results).
- Every error is one line: a page for a person, ``{"error"}`` for the API; the server keeps serving.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import edge_app
from edge_app.audit_log import AuditLogError
from edge_app.formatting import DISCLAIMER
from edge_app.serve import auth
from edge_app.serve.api import api
from edge_app.serve.context import EXTENSION, Clinic, Settings, clinic, fail, wants_json
from edge_app.serve.pages import pages
from edge_app.serve.service import ScreeningService

__all__ = ["Settings", "create_app"]

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

#: Endpoints reachable without logging in (with a password set): the login page, the style
#: sheet and scripts, and the CSRF token a script needs to post its login.
PUBLIC_ENDPOINTS = {"login", "static", "api.session_token"}


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.screen")
    return target


def _logged_in(settings: Settings) -> bool:
    return settings.password_hash is not None and auth.same_fingerprint(
        session.get("auth"), auth.fingerprint(settings.password_hash)
    )


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
    )
    app.extensions[EXTENSION] = Clinic(service, settings)
    CSRFProtect(app)
    app.register_blueprint(pages)
    app.register_blueprint(api)

    @app.context_processor
    def _globals() -> dict:
        return {
            "csrf_token": generate_csrf,
            "disclaimer": DISCLAIMER,
            "app_version": edge_app.__version__,
            "model_version": service.model_version,
            "password_set": settings.password_hash is not None,
            "logged_in": _logged_in(settings),
        }

    @app.before_request
    def _require_login():
        if settings.password_hash is None or request.endpoint in PUBLIC_ENDPOINTS or _logged_in(settings):
            return None
        if wants_json():
            return fail(401, "log in first (POST /login with the clinic password)")
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if settings.password_hash is None:
            return redirect(url_for("pages.screen"))
        throttle = clinic().throttle
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
        return redirect(url_for("login") if settings.password_hash else url_for("pages.screen"))

    _register_errors(app, settings)
    return app


def _register_errors(app: Flask, settings: Settings) -> None:
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
        print(f"pneumoscan: error: {request.method} {request.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return fail(500, f"the server could not finish this request ({type(exc).__name__}); it is still running")
