"""The durable audit log: one SQLite file, one row per image content and model version.

The public API, for ``pneumoscan watch`` and for any server that screens films (a web page, a
DICOM node), is small:

- :class:`AuditLog` opens (and creates or migrates) the file; ``readonly=True`` for readers.
- :func:`screen_file_once` / :func:`record_screening` screen one film *exactly once* per content
  and model: the same SHA-256 rule ``watch`` uses, so a film uploaded twice, or dropped in the
  inbox after it was uploaded, is screened once and the stored result is returned.
- :meth:`AuditLog.entries` reads it back as :class:`LogEntry` (a
  :class:`~edge_app.results.Result` plus what the log knows), which
  :func:`edge_app.formatting.render_log` writes in the same layout ``predict`` uses.

:meth:`AuditLog.claim`, :meth:`AuditLog.record` and :meth:`AuditLog.release` are the claim
protocol underneath; call them directly only to build another loop like :mod:`edge_app.watch`.
The table itself is :mod:`edge_app.audit_schema`; who is alive, :mod:`edge_app.liveness`.

Exactly once, across crashes and concurrent watchers, comes from two things:

- ``UNIQUE(sha256, model_version)``: the database itself refuses a second row for the same image
  content under the same model, however the file was named, copied or renamed.
- Claim, then score, then record, each step its own short transaction. A watcher first inserts a
  ``pending`` row naming itself (``claimed_by``), scores the image outside any transaction (so no
  lock is held during inference), then turns the row into ``done`` or ``error``. A watcher killed
  at any moment leaves either nothing (the claim never committed) or a ``pending`` row whose owner
  is dead; the next watcher to meet that image takes the claim over and completes it. A live
  owner's claim is left alone, so two watchers never score the same image.

WAL mode lets ``history`` read while a watcher writes; every recorded result is fsynced before
the watcher moves on, so it survives a power cut. The file is never deleted, truncated or recreated here: an unreadable,
foreign, newer or read-only database is reported in one line and left exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import edge_app
from edge_app.audit_schema import APPLICATION_ID, MIGRATIONS, ROW_COLUMNS, SCHEMA, SCHEMA_VERSION
from edge_app.liveness import make_owner, owner_alive
from edge_app.results import Result

__all__ = [
    "AuditLog",
    "AuditLogError",
    "Claim",
    "LogEntry",
    "Recorded",
    "Skip",
    "record_screening",
    "screen_file_once",
    "sha256_file",
    "APPLICATION_ID",
    "SCHEMA_VERSION",
]

#: SQLite's busy timeout: how long a writer waits for another one's transaction before giving up
#: (transactions here last milliseconds; only a stuck process holds the lock this long).
BUSY_TIMEOUT_S = 15.0


class AuditLogError(RuntimeError):
    """The database cannot be used; ``str()`` is one line a person can act on."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """This watcher's right to score one image; ``previous`` is the row's status before it."""

    id: int
    sha256: str
    model_version: str
    owner: str
    previous: str | None  # None: new row; 'pending': taken over from a dead watcher; 'error': retry


@dataclass(frozen=True)
class Skip:
    """Why an image needs no scoring: it is ``done``, ``error`` or ``busy`` (a live claim)."""

    status: str
    path: str


def _cannot_write(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


def _explain(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return (
            f"cannot write to the audit log {path}: it is read-only (check the permissions of the "
            "file and its folder, and whether the disk was remounted read-only); it was left untouched"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return (
            f"{path} is not a readable pneumoscan audit log ({text}); it was left untouched: "
            "restore it from a backup, or move it aside and give --db a new file"
        )
    if "full" in lowered:
        return f"the disk holding the audit log {path} is full: free some space"
    if "locked" in lowered or "busy" in lowered:
        return f"the audit log {path} stayed locked by another process for {BUSY_TIMEOUT_S:g} s"
    if "unable to open" in lowered:
        return f"cannot open the audit log {path} (does its folder exist and is it writable?)"
    return f"audit log {path}: {text}"


class AuditLog:
    """An open audit log. ``readonly=True`` (for ``history``) never creates or changes the file."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.owner = make_owner()
        if self.path.is_dir():
            raise AuditLogError(f"the audit log {self.path} is a folder; give a file name")
        if readonly and not self.path.exists():
            raise AuditLogError(f"no audit log at {self.path} (pneumoscan watch creates it)")
        if not readonly and not self.path.parent.is_dir():
            raise AuditLogError(f"folder {self.path.parent} for the audit log does not exist")
        try:
            self._open("mode=ro" if readonly else None)
        except sqlite3.Error as exc:
            if not (readonly and _cannot_write(exc)):
                raise AuditLogError(_explain(self.path, exc)) from None
            # Reading a WAL database needs its -shm index, which a reader that may not write
            # cannot create: on a read-only disk, read the file as it stands.
            try:
                self._open("immutable=1")
            except sqlite3.Error as exc:
                raise AuditLogError(_explain(self.path, exc)) from None

    def _open(self, uri_flags: str | None) -> None:
        if uri_flags:
            target, uri = f"{self.path.resolve().as_uri()}?{uri_flags}", True
        else:
            target, uri = str(self.path), False
        self._db = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        fresh = app_id == 0 and version == 0 and tables == 0
        if not fresh and app_id != APPLICATION_ID:
            raise AuditLogError(
                f"{self.path} is an SQLite database but not a pneumoscan audit log; it was left "
                "untouched: give --db another file"
            )
        if version > SCHEMA_VERSION:
            raise AuditLogError(
                f"{self.path} was written by a newer pneumoscan (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade pneumoscan to use it"
            )
        if self.readonly:
            if fresh:
                raise AuditLogError(f"{self.path} is empty: no results have been recorded yet")
            return
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise AuditLogError(f"cannot switch the audit log {self.path} to WAL mode")
        if fresh:
            with self._write():
                # Re-check inside the lock: another watcher may have created it meanwhile.
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                    for statement in SCHEMA:  # not executescript(): it would commit first
                        db.execute(statement)
            return
        check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise AuditLogError(
                f"{self.path} is damaged ({check}); it was left untouched: restore it from a "
                "backup, or move it aside and give --db a new file"
            )
        if version < SCHEMA_VERSION:
            with self._write():
                # Re-read inside the lock: another watcher may have migrated it meanwhile.
                current = db.execute("PRAGMA user_version").fetchone()[0]
                for step in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[step]:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {max(current, SCHEMA_VERSION)}")
            version = SCHEMA_VERSION
        with self._write():  # fail now, not at the first image, if the file is read-only
            db.execute(f"PRAGMA user_version = {version}")  # a real write, rolled back below
            raise _Probe

    # ``BEGIN IMMEDIATE`` takes the write lock up front, so a claim's read-then-write is atomic
    # against other watchers; the busy timeout makes them queue rather than fail.
    # Only a result must survive a power cut: a lost claim is simply made again. So claims skip
    # the fsync (WAL frames stay in order, and the result's fsync covers them), which halves the
    # fsyncs per image (~4.5 ms each on this machine's disk, more on an SD card).
    def _write(self, durable: bool = True) -> "_Transaction":
        return _Transaction(self, durable)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the watcher's side ----------------------------------------------------------------

    def claim(
        self, sha256: str, model_version: str, path: str, size: int, mtime_ns: int | None = None,
        *, retry_errors: bool = False,
    ) -> Claim | Skip:
        """Claim the image for scoring, or say why it needs none."""
        now = utc_now()
        with self._write(durable=False):
            row = self._db.execute(
                "SELECT id, status, path, claimed_by, claimed_at FROM results "
                "WHERE sha256 = ? AND model_version = ?",
                (sha256, model_version),
            ).fetchone()
            if row is None:
                cursor = self._db.execute(
                    "INSERT INTO results (sha256, model_version, status, path, size, mtime_ns, "
                    "created_at, claimed_by, claimed_at, app_version) "
                    "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                    (sha256, model_version, path, size, mtime_ns, now, self.owner, now, edge_app.__version__),
                )
                return Claim(cursor.lastrowid, sha256, model_version, self.owner, None)
            status = row["status"]
            if status == "done" or (status == "error" and not retry_errors):
                return Skip(status, row["path"])
            if status == "pending" and row["claimed_by"] != self.owner and owner_alive(
                row["claimed_by"] or "", row["claimed_at"]
            ):
                return Skip("busy", row["path"])
            self._db.execute(
                "UPDATE results SET status = 'pending', path = ?, size = ?, mtime_ns = ?, "
                "claimed_by = ?, claimed_at = ? WHERE id = ?",
                (path, size, mtime_ns, self.owner, now, row["id"]),
            )
            return Claim(row["id"], sha256, model_version, self.owner, status)

    def record(self, claim: Claim, result: Result) -> bool:
        """Store the outcome of a claimed image; ``False`` if another watcher took the claim."""
        if result.model_version not in (None, claim.model_version):
            raise ValueError(
                f"result from model {result.model_version} recorded under claim for {claim.model_version}"
            )
        ok = result.error is None
        with self._write():
            cursor = self._db.execute(
                "UPDATE results SET status = ?, probability = ?, score = ?, label = ?, "
                "uncertain = ?, threshold = ?, threshold_source = ?, site_profile = ?, latency_ms = ?, "
                "error = ?, extra = ?, created_at = ?, "
                "attempts = attempts + 1 WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                (
                    "done" if ok else "error",
                    result.probability if ok else None,
                    result.score if ok else None,
                    result.label if ok else None,
                    None if result.uncertain is None or not ok else int(result.uncertain),
                    result.threshold if ok else None,
                    result.threshold_source if ok else None,
                    result.site_profile if ok else None,
                    result.latency_ms,
                    result.error,
                    json.dumps(result.extra, default=str) if result.extra else None,
                    utc_now(),
                    claim.id,
                    claim.owner,
                ),
            )
            return cursor.rowcount == 1

    def release(self, claim: Claim) -> None:
        """Give a claim back unscored (the file changed under us, or we were interrupted)."""
        with self._write(durable=False):
            if claim.previous == "error":
                self._db.execute(
                    "UPDATE results SET status = 'error' WHERE id = ? AND claimed_by = ? "
                    "AND status = 'pending'",
                    (claim.id, claim.owner),
                )
            else:  # a pending row carries no result yet: nothing is lost by removing it
                self._db.execute(
                    "DELETE FROM results WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                    (claim.id, claim.owner),
                )

    def known_files(self) -> Iterator[tuple[str, int, int, str]]:
        """``(path, size, mtime_ns, sha256)`` of every file recorded, to skip re-hashing them."""
        for row in self._db.execute(
            "SELECT path, size, mtime_ns, sha256 FROM results WHERE mtime_ns IS NOT NULL"
        ):
            yield row[0], row[1], row[2], row[3]

    def settled(self, model_version: str, *, include_errors: bool = True) -> dict[str, str]:
        """``{sha256: path}`` of the images that need no scoring under ``model_version``."""
        statuses = ("done", "error") if include_errors else ("done",)
        marks = ",".join("?" * len(statuses))
        return dict(
            self._db.execute(
                f"SELECT sha256, path FROM results WHERE model_version = ? AND status IN ({marks})",
                (model_version, *statuses),
            ).fetchall()
        )

    # --- the reader's side -----------------------------------------------------------------

    def rows(self, since: datetime | None = None) -> list[dict]:
        """Every row, newest first, as dicts keyed by :data:`~edge_app.audit_schema.ROW_COLUMNS`
        and ``extra`` (a dict, empty for a file older than that column, which a reader does not
        migrate)."""
        query = f"SELECT {self._select()} FROM results"
        params: tuple = ()
        if since is not None:
            query += " WHERE created_at >= ?"
            params = (since.astimezone(timezone.utc).isoformat(timespec="milliseconds"),)
        query += " ORDER BY created_at DESC, id DESC"
        try:
            rows = [dict(row) for row in self._db.execute(query, params)]
        except sqlite3.Error as exc:
            raise AuditLogError(_explain(self.path, exc)) from None
        for row in rows:
            if row["uncertain"] is not None:
                row["uncertain"] = bool(row["uncertain"])
            row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        return rows


    def _select(self) -> str:
        """The columns a reader asks for; ``NULL`` for those a file older than them lacks (a
        reader never migrates: ``history`` may run on a read-only copy)."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        return ", ".join(c if c in present else f"NULL AS {c}" for c in (*ROW_COLUMNS, "extra"))

    def entries(self, since: datetime | None = None) -> list["LogEntry"]:
        """:meth:`rows` as :class:`LogEntry` records (each with its :class:`Result`)."""
        return [LogEntry.of(row) for row in self.rows(since)]

    def find(self, sha256: str) -> list["LogEntry"]:
        """Every row for this content (one per model version), newest first: what a page showing
        one film looks up, without reading the whole log."""
        try:
            rows = [dict(row) for row in self._db.execute(
                f"SELECT {', '.join(ROW_COLUMNS)}, extra FROM results WHERE sha256 = ? "
                "ORDER BY created_at DESC, id DESC",
                (sha256,),
            )]
        except sqlite3.Error as exc:
            raise AuditLogError(_explain(self.path, exc)) from None
        for row in rows:
            row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        return [LogEntry.of(row) for row in rows]

    def stored_result(self, sha256: str, model_version: str) -> Result | None:
        """The finished result recorded for this content under this model, or None."""
        row = self._db.execute(
            f"SELECT {self._select()} FROM results "
            "WHERE sha256 = ? AND model_version = ? AND status IN ('done', 'error')",
            (sha256, model_version),
        ).fetchone()
        if row is None:
            return None
        row = dict(row)
        row["extra"] = json.loads(row["extra"]) if row["extra"] else {}
        return LogEntry.of(row).result


@dataclass(frozen=True)
class LogEntry:
    """One row of the log: the film's :class:`Result` and what only the log knows about it."""

    result: Result
    status: str  # 'pending', 'done' or 'error'
    created_at: str  # UTC ISO-8601
    model_version: str
    sha256: str
    size: int

    @classmethod
    def of(cls, row: dict) -> "LogEntry":
        done = row["status"] == "done"
        uncertain = row["uncertain"]
        result = Result(
            path=row["path"],
            probability=row["probability"],
            score=row["score"],
            label=row["label"],
            uncertain=None if uncertain is None else bool(uncertain),
            threshold=row["threshold"],
            threshold_source=row.get("threshold_source"),
            site_profile=row.get("site_profile"),
            model_version=row["model_version"] if row["status"] != "pending" else None,
            latency_ms=row["latency_ms"] if done else None,
            error=row["error"],
            extra=dict(row.get("extra") or {}),
        )
        return cls(result, row["status"], row["created_at"], row["model_version"], row["sha256"], row["size"])


# --- screening one film exactly once ---------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's content: the identity of a film in the log, whatever its name.

    Raises ``OSError`` (also for a named pipe or device: such a file is never opened to block)."""
    from edge_app.preprocessing import ImageError, open_regular

    digest = hashlib.sha256()
    try:
        handle = open_regular(path, allow_empty=True)
    except ImageError as exc:
        raise OSError(str(exc)) from None
    with handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_screening` did with one film.

    ``status``: ``"recorded"`` (screened now and stored), ``"already"`` (this content was
    screened under this model before; ``result`` is the stored one, and ``recorded_as`` the path
    it was stored under), ``"busy"`` (another live process is screening it right now; ``result``
    is None: ask again shortly), ``"changed"`` (the file changed while it was read: nothing
    stored, ``result`` None). ``stored`` is False only when another process took a claim over
    and recorded the film first.
    """

    status: str
    result: Result | None
    sha256: str
    recorded_as: str | None = None
    stored: bool = True


def record_screening(
    log: AuditLog,
    screen: Callable[[], Result],
    *,
    sha256: str,
    path: str,
    size: int,
    model_version: str,
    mtime_ns: int | None = None,
    retry_errors: bool = False,
    unchanged: Callable[[], bool] | None = None,
) -> Recorded:
    """Screen one film (``screen()``, e.g. ``lambda: screener.screen(path)``) at most once per
    content (``sha256``) and ``model_version``, and record its result under ``path``.

    Claim, screen outside any transaction, record: the protocol that makes the log exactly-once
    across crashes and concurrent processes. ``screen`` must not raise for a bad image
    (:meth:`~edge_app.screening.Screener.screen` doesn't): a failure is recorded as an ``error``
    row, tried again only with ``retry_errors``. ``unchanged()``, if given, is asked after
    screening; False releases the claim unrecorded (``"changed"``). If ``screen`` raises, the
    claim is released and the exception propagates.
    """
    outcome = log.claim(sha256, model_version, path, size, mtime_ns, retry_errors=retry_errors)
    if isinstance(outcome, Skip):
        if outcome.status == "busy":
            return Recorded("busy", None, sha256, outcome.path)
        return Recorded("already", log.stored_result(sha256, model_version), sha256, outcome.path)
    try:
        result = screen()
        if unchanged is not None and not unchanged():
            log.release(outcome)
            return Recorded("changed", None, sha256)
    except BaseException:
        log.release(outcome)
        raise
    result.path = path
    stored = log.record(outcome, result)
    return Recorded("recorded", result, sha256, path, stored)


def screen_file_once(
    log: AuditLog, screener, path: str | os.PathLike, *, name: str | None = None, retry_errors: bool = False
) -> Recorded:
    """Screen the file at ``path`` with ``screener`` (a :class:`~edge_app.screening.Screener`)
    unless its content was already screened under the screener's model, and record it as
    ``name`` (default: the path). The call a server makes for a film it received and saved."""
    path = os.fspath(path)
    size = os.stat(path).st_size
    return record_screening(
        log,
        lambda: screener.screen(path),
        sha256=sha256_file(path),
        path=name or path,
        size=size,
        model_version=screener.classifier.contract.version,
        retry_errors=retry_errors,
    )


class _Probe(Exception):
    """Rolls back the write probe in :meth:`AuditLog._prepare`."""


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, fsynced if ``durable``; rolled back on any exception,
    SQLite's reported as :class:`AuditLogError` (a disk that became full or read-only while
    watching)."""

    def __init__(self, log: AuditLog, durable: bool):
        self._log = log
        self._sync = "FULL" if durable else "NORMAL"

    def __enter__(self) -> None:
        try:
            self._log._db.execute(f"PRAGMA synchronous = {self._sync}")
            self._log._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise AuditLogError(_explain(self._log.path, exc)) from None

    def __exit__(self, exc_type, exc, tb) -> bool:
        db = self._log._db
        if exc_type is None:
            try:
                db.execute("COMMIT")
                return False
            except sqlite3.Error as error:
                exc_type, exc = type(error), error
        if db.in_transaction:
            db.execute("ROLLBACK")
        if exc_type is _Probe:
            return True
        if isinstance(exc, sqlite3.Error):
            raise AuditLogError(_explain(self._log.path, exc)) from None
        return False
