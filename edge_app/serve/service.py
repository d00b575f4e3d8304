"""Screening what the page receives, exactly as ``predict`` does, recorded exactly as ``watch`` does.

An upload is stored by content (:class:`~edge_app.serve.storage.FilmStore`), then the audit log
decides by its SHA-256 and the model version whether it still needs screening: the same rule as
``watch`` (one row per content and model; a film sent twice, or sent by the page and also dropped
into the inbox, is screened once and its recorded result is returned). Refusals are recorded
too (the worklist's "refused" filter), and like ``watch`` they are not retried.

One interpreter serves every request: screening is serialised by a lock (the interpreter is not
thread-safe, and on a Pi the cores are better spent on one film at a time, each with ``--threads``).
Each server thread opens its own connection to the audit log (SQLite connections belong to one
thread); the log's claim protocol keeps two threads, or a server and a watcher, from screening the
same film twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, time as day_time, timedelta
from pathlib import Path
from typing import BinaryIO

from edge_app.audit_log import AuditLog, Claim, Skip
from edge_app.classifier import Classifier
from edge_app.results import Result
from edge_app.screening import Screener
from edge_app.serve.storage import FilmStore, StoredFilm, ViewWriter

#: How long a request waits for another one (or a watcher) screening the same film.
BUSY_WAIT_S = 120.0
_BUSY_POLL_S = 0.05


@dataclass(frozen=True)
class Screened:
    """One upload's outcome: its result (``path`` is the name it was sent under), its content
    hash, and whether it was screened now or its earlier result was found in the log."""

    result: Result
    sha256: str
    new: bool


def result_from_row(row: dict, path: str) -> Result:
    """The :class:`Result` an audit-log row records, reported under ``path``."""
    extra = dict(row.get("extra") or {})
    if row["status"] != "done":
        return Result(path=path, error=row.get("error") or "not finished", extra=extra)
    return Result(
        path=path,
        probability=row["probability"],
        score=row["score"],
        label=row["label"],
        uncertain=row["uncertain"],
        threshold=row["threshold"],
        model_version=row["model_version"],
        latency_ms=row.get("latency_ms"),
        extra=extra,
    )


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
        on_warning=None,
    ):
        self.classifier = classifier
        self.store = store
        self.db_path = Path(db_path)
        self.with_ids = with_ids
        self.model_version = classifier.contract.version
        heatmaps = ViewWriter(store, self.model_version) if classifier.has_heatmap else None
        self.screener = Screener(classifier, on_warning=on_warning, gate=gate, with_ids=with_ids, heatmaps=heatmaps)
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

    def screen_stored(self, stored: StoredFilm, name: str) -> Screened:
        log = self.log()
        deadline = time.monotonic() + BUSY_WAIT_S
        while True:
            outcome = log.claim(stored.sha256, self.model_version, str(stored.path), stored.size)
            if isinstance(outcome, Claim):
                break
            if outcome.status != "busy" or time.monotonic() > deadline:
                return Screened(self._recorded(stored.sha256, name, outcome), stored.sha256, False)
            time.sleep(_BUSY_POLL_S)
        try:
            with self._lock:
                result = self.screener.screen(str(stored.path))
        except BaseException:
            log.release(outcome)
            raise
        result.path = str(stored.path)
        result.extra["upload_name"] = name  # the log keeps the stored path; the worklist shows this
        log.record(outcome, result)
        del result.extra["upload_name"]
        result.path = name
        return Screened(result, stored.sha256, True)

    def _recorded(self, sha256: str, name: str, skip: Skip) -> Result:
        row = self.find(sha256, self.model_version)
        if row is None or row["status"] == "pending":
            return Result(path=name, error="another screening of this film has not finished; try again shortly")
        return result_from_row(row, name)

    # --- reading the log ------------------------------------------------------------------

    def find(self, sha256: str, model_version: str | None = None) -> dict | None:
        """The newest row for this content (under ``model_version`` if given)."""
        for row in self.log().rows():
            if row["sha256"] == sha256 and model_version in (None, row["model_version"]):
                return row
        return None

    def rows_for_day(self, day: date) -> list[dict]:
        """The day's rows (local time), newest first: what ``history --since DAY`` starts with."""
        start, end = day_bounds(day)
        rows = self.log().rows(start)
        return [r for r in rows if datetime.fromisoformat(r["created_at"]) < end]
