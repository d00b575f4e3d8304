"""The durable audit log of ``pneumoscan watch``: one SQLite file, one row per image and model.

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

import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import edge_app
from edge_app.results import Result

#: Bumped with every change to the tables below (adding a migration for older files); a file
#: with a newer version is refused rather than misread.
SCHEMA_VERSION = 2

#: ``PRAGMA application_id`` marking a file as a pneumoscan audit log ("PNMS").
APPLICATION_ID = 0x504E4D53

#: SQLite's busy timeout: how long a writer waits for another one's transaction before giving up
#: (transactions here last milliseconds; only a stuck process holds the lock this long).
BUSY_TIMEOUT_S = 15.0

#: A claim made on another machine (a database on a shared folder) is presumed abandoned after
#: this long; on this machine the owner's process is checked directly.
FOREIGN_CLAIM_STALE_AFTER = timedelta(minutes=10)

SCHEMA = (
    """
CREATE TABLE results (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'error')),
    path          TEXT    NOT NULL,   -- where the image was when it was scored
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER,
    probability   REAL,
    score         INTEGER,
    label         TEXT,
    uncertain     INTEGER,
    threshold     REAL,
    latency_ms    REAL,
    error         TEXT,
    created_at    TEXT    NOT NULL,   -- UTC ISO-8601; when the result (or the claim) was written
    claimed_by    TEXT,               -- host:boot:pid:start:nonce of the watcher that scored it
    claimed_at    TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    app_version   TEXT,
    extra         TEXT,               -- JSON: the heatmap's path, DICOM header fields
    UNIQUE (sha256, model_version)
)""",
    "CREATE INDEX results_created_at ON results (created_at)",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

#: What turns a file of version ``n - 1`` into version ``n``.
MIGRATIONS = {
    2: ("ALTER TABLE results ADD COLUMN extra TEXT",),
}

#: Columns ``history`` exports, in order (then the keys stored in ``extra``).
EXPORT_COLUMNS = (
    "created_at",
    "path",
    "status",
    "label",
    "score",
    "probability",
    "uncertain",
    "threshold",
    "model_version",
    "error",
    "sha256",
    "size",
)


class AuditLogError(RuntimeError):
    """The database cannot be used; ``str()`` is one line a person can act on."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- who holds a claim ----------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a running process, ``None`` if it is gone.

    With the boot id this tells a live owner from a later process that reused its pid.
    A zombie (killed, not yet reaped) counts as gone.
    """
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name in (...) may contain spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


_BOOT_ID = (_read("/proc/sys/kernel/random/boot_id") or "-")[:8]
_HOST = socket.gethostname().replace(":", "_")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_owner() -> str:
    """A new claim-owner id for this process: unique per watcher, checkable for liveness."""
    pid = os.getpid()
    return f"{_HOST}:{_BOOT_ID}:{pid}:{_process_start(pid) or '-'}:{secrets.token_hex(4)}"


def owner_alive(owner: str, claimed_at: str | None) -> bool:
    """Whether the watcher named ``owner`` may still be working on its claim."""
    try:
        host, boot, pid_text, start, _nonce = owner.rsplit(":", 4)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != _HOST:
        try:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(claimed_at or "")
        except ValueError:
            return False
        return age < FOREIGN_CLAIM_STALE_AFTER
    if boot != _BOOT_ID:
        return False  # claimed before this machine last booted
    if os.path.isdir("/proc/self"):
        return _process_start(pid) == start or (start == "-" and _pid_alive(pid))
    return _pid_alive(pid)


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
                "uncertain = ?, threshold = ?, latency_ms = ?, error = ?, extra = ?, created_at = ?, "
                "attempts = attempts + 1 WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                (
                    "done" if ok else "error",
                    result.probability if ok else None,
                    result.score if ok else None,
                    result.label if ok else None,
                    None if result.uncertain is None or not ok else int(result.uncertain),
                    result.threshold if ok else None,
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
        """Every row, newest first, as dicts keyed by :data:`EXPORT_COLUMNS` and ``extra`` (a
        dict, empty for a file older than that column, which a reader does not migrate)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        extra = "extra" if "extra" in columns else "NULL AS extra"
        query = f"SELECT {', '.join(EXPORT_COLUMNS)}, {extra} FROM results"
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
