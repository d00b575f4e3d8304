"""The JSON API behind the pages (docs/serve.md): one film in, ``predict``'s JSON out; a day's rows.

- ``POST /api/screen`` (multipart field ``file``): the object ``pneumoscan predict FILE --format
  json`` gives for that file, ``path`` being the name it was sent under. 201 screened now, 200
  already in the audit log, 422 refused (``{"path", "error"}``); ``Content-Location`` names the
  film's result page.
- ``GET /api/worklist?date=YYYY-MM-DD&filter=...``: the rows ``history --format json`` prints.
- ``GET /api/session``: a CSRF token for this session, for scripts (every POST needs one).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request, url_for
from flask_wtf.csrf import generate_csrf

from edge_app.formatting import render_log
from edge_app.results import Result
from edge_app.serve.context import clinic, day_and_filter, day_entries, upload_name
from edge_app.serve.service import UPLOAD_NAME
from edge_app.serve.storage import UploadTooLarge

api = Blueprint("api", __name__, url_prefix="/api")

#: Keys the server adds to a result for its own record: the heatmap's path on the device (the
#: page links pictures by content hash instead) and the name the file was first sent under. The
#: API answers without them, so its object is ``predict --format json``'s.
SERVER_KEYS = ("heatmap", UPLOAD_NAME)


def api_record(result: Result) -> dict:
    """The API's JSON for a result: ``predict --format json``'s object for the same film."""
    record = result.to_dict()
    for key in SERVER_KEYS:
        record.pop(key, None)
    return record


@api.post("/screen")
def screen():
    c = clinic()
    sent = request.files.getlist("file")
    if not sent:
        abort(400, "no file in the upload: send one film as the multipart field 'file'")
    if len(sent) > 1:
        abort(400, f"{len(sent)} files in one upload: send one film per request")
    storage = sent[0]
    name = upload_name(storage)
    try:
        screened = c.service.screen_upload(storage.stream, name, c.settings.max_upload_bytes)
    except UploadTooLarge as exc:
        abort(413, f"{name}: {exc}")
    response = jsonify(api_record(screened.result))
    response.status_code = 422 if not screened.result.ok else (201 if screened.new else 200)
    response.headers["Content-Location"] = url_for("pages.result", sha256=screened.sha256)
    return response


@api.get("/worklist")
def worklist():
    return Response(render_log(day_entries(*day_and_filter()), "json"), mimetype="application/json")


@api.get("/session")
def session_token():
    return jsonify(csrf_token=generate_csrf())
