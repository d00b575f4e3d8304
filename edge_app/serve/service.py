"""Screening what the page receives, exactly as ``predict`` does, recorded exactly as ``watch`` does.

An upload is stored by content (:class:`~edge_app.serve.storage.FilmStore`), then
:func:`edge_app.audit_log.record_screening` decides by its SHA-256 and the model version whether it
still needs screening: the same rule as ``watch`` (one row per content and model; a film sent
twice, or sent by the page and also dropped into the inbox, is screened once and its recorded
result is returned). Refusals are recorded too (the worklist's "refused" filter), and like
``watch`` they are not retried.

One interpreter serves every request: screening is serialised by a lock (the interpreter is not
thread-safe, and on a Pi the cores are better spent on one film at a time, each with ``--threads``).
Each server thread opens its own connection to the audit log (SQLite connections belong to one
thread); the log's claim protocol keeps two threads, or a server and a watcher, from screening the
same film twice: the second one waits for the first one's result.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, time as day_time, timedelta
from pathlib import Path
from typing import BinaryIO

from edge_app.audit_log import AuditLog, LogEntry, record_screening
from edge_app.classifier import Classifier
from edge_app.operating_point import OperatingPoint
from edge_app.results import Result
from edge_app.screening import Screener
from edge_app.serve.storage import FilmStore, StoredFilm, ViewWriter

#: How long a request waits for another one (or a watcher) screening the same film.
BUSY_WAIT_S = 120.0
_BUSY_POLL_S = 0.05

#: The key under which the log keeps the name a film was sent under (the worklist shows it).
UPLOAD_NAME = "upload_name"


@dataclass(frozen=True)
class Screened:
    """One upload's outcome: its result (``path`` is the name it was sent under), its content
    hash, and whether it was screened now or its earlier result was found in the log."""

    result: Result
    sha256: str
    new: bool


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, as aware datetimes."""
    start = datetime.combine(day, day_time()).astimezone()
    return start, datetime.combine(day + timedelta(days=1), day_time()).astimezone()


class ScreeningService:
    """The classifier, the film store and the audit log behind the pages and the API."""

    def __init__(
        self,
        classifier: Classifier,
        store: FilmStore,
        db_path: str | Path,
        *,
        gate: bool = True,
        with_ids: bool = False,
        point: OperatingPoint | None = None,
        on_warning=None,
    ):
        """``point``: the threshold and band to decide with (a site profile's; default the
        model's own), as ``predict --site`` and ``watch --site`` take it."""
        self.classifier = classifier
        self.store = store
        self.db_path = Path(db_path)
        self.with_ids = with_ids
        self.model_version = classifier.contract.version
        # The page's pictures come from the heatmap writer, which is handed the film as displayed.
        views = ViewWriter(store, self.model_version) if classifier.contract.heatmap is not None else None
        self.screener = Screener(
            classifier, on_warning=on_warning, gate=gate, with_ids=with_ids, heatmaps=views, point=point
        )
        self.point = self.screener.point
        self._lock = threading.Lock()
        self._local = threading.local()
        AuditLog(self.db_path).close()  # fail at start, with the reason, if the log is unusable

    def log(self) -> AuditLog:
        """This thread's connection to the audit log."""
        log = getattr(self._local, "log", None)
        if log is None:
            log = self._local.log = AuditLog(self.db_path)
        return log

    # --- screening ------------------------------------------------------------------------

    def screen_upload(self, stream: BinaryIO, name: str, limit: int | None = None) -> Screened:
        """Store, screen and record one uploaded file (or find its recorded result)."""
        stored = self.store.save(stream, limit, sent_as=name)
        return self.screen_stored(stored, name)

    def _screen(self, stored: StoredFilm, name: str) -> Result:
        with self._lock:
            result = self.screener.screen(stored.path)
        result.extra[UPLOAD_NAME] = name
        return result

    def screen_stored(self, stored: StoredFilm, name: str) -> Screened:
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            recorded = record_screening(
                self.log(),
                lambda: self._screen(stored, name),
                sha256=stored.sha256,
                path=str(stored.path),
                size=stored.size,
                model_version=self.model_version,
            )
            if recorded.status != "busy":
                break
            if time.monotonic() > deadline:
                return Screened(
                    Result(path=name, error="another screening of this film has not finished; try again shortly"),
                    stored.sha256,
                    False,
                )
            time.sleep(_BUSY_POLL_S)  # another thread or a watcher is screening this very film
        result = recorded.result or Result(path=name, error="the audit log lost this film's result; send it again")
        result.path = name
        return Screened(result, stored.sha256, recorded.status == "recorded")

    # --- reading the log ------------------------------------------------------------------

    def find(self, sha256: str, model_version: str | None = None) -> LogEntry | None:
        """The newest entry for this content (under ``model_version`` if given)."""
        for entry in self.log().find(sha256):
            if model_version in (None, entry.model_version):
                return entry
        return None

    def entries_for_day(self, day: date) -> list[LogEntry]:
        """The day's entries (local time), newest first: what ``history --since DAY`` starts with."""
        start, end = day_bounds(day)
        return [e for e in self.log().entries(start) if datetime.fromisoformat(e.created_at) < end]
