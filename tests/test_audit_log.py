"""The audit log: exactly-once claims, crash recovery, and refusing bad files without touching them."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge_app import audit_log, audit_schema
from edge_app.audit_log import AuditLog, AuditLogError, Claim, Skip
from edge_app.liveness import make_owner
from edge_app.results import Result

V = "v1"


def ok(path: str = "/in/a.png", probability: float = 0.8) -> Result:
    return Result(path, probability, round(100 * probability), "PNEUMONIA", False, 0.5, V, 3.0)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite"


def test_new_log_is_wal_versioned_and_marked(db: Path) -> None:
    AuditLog(db).close()
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == audit_log.SCHEMA_VERSION
    assert raw.execute("PRAGMA application_id").fetchone()[0] == audit_log.APPLICATION_ID
    columns = {row[1] for row in raw.execute("PRAGMA table_info(results)")}
    assert set(audit_schema.ROW_COLUMNS) <= columns
    raw.close()


def test_claim_record_then_skip(db: Path) -> None:
    with AuditLog(db) as log:
        claim = log.claim("h1", V, "/in/a.png", 10, 1)
        assert isinstance(claim, Claim) and claim.previous is None
        assert log.record(claim, ok())
        assert log.claim("h1", V, "/in/renamed.png", 10, 2) == Skip("done", "/in/a.png")
        assert isinstance(log.claim("h1", "v2", "/in/a.png", 10, 1), Claim)  # new model: new row
        [row] = [r for r in log.rows() if r["model_version"] == V]
    assert row["status"] == "done" and row["label"] == "PNEUMONIA" and row["uncertain"] is False
    assert row["path"] == "/in/a.png" and row["sha256"] == "h1" and row["size"] == 10


def test_database_refuses_a_second_row_for_the_same_image_and_model(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(log.claim("h1", V, "/a", 1), ok())
    raw = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute(
            "INSERT INTO results (sha256, model_version, status, path, size, created_at) "
            "VALUES ('h1', ?, 'done', '/b', 1, 'now')",
            (V,),
        )
    raw.close()


def test_error_is_recorded_once_and_retried_only_when_asked(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(log.claim("h", V, "/bad.jpg", 7), Result("/bad.jpg", error="empty file"))
        assert log.claim("h", V, "/bad.jpg", 7) == Skip("error", "/bad.jpg")
        retry = log.claim("h", V, "/bad.jpg", 7, retry_errors=True)
        assert isinstance(retry, Claim) and retry.previous == "error"
        log.release(retry)  # interrupted retry: the error stays on record
        [row] = log.rows()
        assert row["status"] == "error" and row["error"] == "empty file"
        retry = log.claim("h", V, "/bad.jpg", 7, retry_errors=True)
        log.record(retry, ok("/bad.jpg"))
        [row] = log.rows()
    assert row["status"] == "done" and row["error"] is None


def test_released_new_claim_leaves_no_row(db: Path) -> None:
    with AuditLog(db) as log:
        log.release(log.claim("h", V, "/a", 1))
        assert log.rows() == []


def test_live_claim_of_another_watcher_is_left_alone(db: Path) -> None:
    with AuditLog(db) as first, AuditLog(db) as second:
        claim = first.claim("h", V, "/a", 1)
        assert second.claim("h", V, "/a", 1) == Skip("busy", "/a")
        assert first.record(claim, ok())
        assert second.claim("h", V, "/a", 1) == Skip("done", "/a")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _owner(pid: int) -> str:
    """An owner id like this process's, for another pid."""
    mine = make_owner().rsplit(":", 4)
    return f"{mine[0]}:{mine[1]}:{pid}:1:cafe"


def test_claim_of_a_dead_watcher_is_taken_over_and_completed(db: Path) -> None:
    with AuditLog(db) as log:
        log.claim("h", V, "/a", 1)
    raw = sqlite3.connect(db)
    raw.execute("UPDATE results SET claimed_by = ?", (_owner(_dead_pid()),))
    raw.commit()
    raw.close()
    with AuditLog(db) as log:
        claim = log.claim("h", V, "/a", 1)
        assert isinstance(claim, Claim) and claim.previous == "pending"
        assert log.record(claim, ok())
        assert [r["status"] for r in log.rows()] == ["done"]


def test_record_refuses_a_result_of_another_model(db: Path) -> None:
    with AuditLog(db) as log:
        claim = log.claim("h", V, "/a", 1)
        with pytest.raises(ValueError):
            log.record(claim, Result("/a", 0.5, 50, "NORMAL", False, 0.5, "v2"))


def test_rows_newest_first_and_since(db: Path) -> None:
    with AuditLog(db) as log:
        for name in ("a", "b", "c"):
            log.record(log.claim(name, V, f"/{name}", 1), ok(f"/{name}"))
            time.sleep(0.002)
        assert [r["path"] for r in log.rows()] == ["/c", "/b", "/a"]
        assert log.rows(datetime.now(timezone.utc) + timedelta(seconds=5)) == []
        assert len(log.rows(datetime.now(timezone.utc) - timedelta(minutes=1))) == 3


def test_find_gives_one_films_entries_newest_first(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(log.claim("h1", V, "/in/a.png", 10), ok("/in/a.png"))
        time.sleep(0.002)
        log.record(log.claim("h1", "v2", "/in/a.png", 10), Result("/in/a.png", error="not a chest X-ray: x"))
        log.record(log.claim("h2", V, "/in/b.png", 10), ok("/in/b.png"))
        pending = log.claim("h3", V, "/in/c.png", 10)
        found = log.find("h1")
        assert [(e.model_version, e.status) for e in found] == [("v2", "error"), (V, "done")]
        assert found[1].result.probability == 0.8 and found[1].result.latency_ms == 3.0
        assert found[0].result.error == "not a chest X-ray: x"
        assert [e.status for e in log.find("h3")] == ["pending"]
        assert log.find("nothing") == []
        log.release(pending)


def test_known_files_and_settled(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(log.claim("h1", V, "/a", 10, 123), ok())
        log.record(log.claim("h2", V, "/b", 20, 456), Result("/b", error="bad"))
        log.claim("h3", V, "/c", 30, 789)  # pending: not settled
        assert set(log.known_files()) == {("/a", 10, 123, "h1"), ("/b", 20, 456, "h2"), ("/c", 30, 789, "h3")}
        assert log.settled(V) == {"h1": "/a", "h2": "/b"}
        assert log.settled(V, include_errors=False) == {"h1": "/a"}


# --- files that are not a usable log are reported, and left byte for byte as they were ---------


def _refused(db: Path, match: str, readonly: bool = False) -> None:
    before = digest(db)
    with pytest.raises(AuditLogError, match=match):
        AuditLog(db, readonly=readonly)
    assert digest(db) == before


@pytest.mark.parametrize("readonly", [False, True])
def test_garbage_file_is_refused_untouched(db: Path, readonly: bool) -> None:
    db.write_bytes(b"these are the clinic's notes, not a database\n" * 100)
    _refused(db, "not a readable pneumoscan audit log", readonly)


def test_damaged_log_is_refused_untouched(db: Path) -> None:
    with AuditLog(db) as log:
        for i in range(300):
            log.record(log.claim(f"h{i}", V, f"/in/{i:04d}.png" * 5, 1), ok())
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page : 3 * page] = b"\xff" * page  # a page of the table scribbled over
    db.write_bytes(bytes(data))
    _refused(db, "damaged|not a readable")


def test_foreign_sqlite_database_is_refused_untouched(db: Path) -> None:
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE patients (name TEXT)")
    raw.commit()
    raw.close()
    _refused(db, "not a pneumoscan audit log")


def test_newer_schema_is_refused_untouched(db: Path) -> None:
    AuditLog(db).close()
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {audit_log.SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    _refused(db, "newer pneumoscan")


#: Columns each schema version added to the table.
ADDED_IN = {2: ("extra",), 3: ("threshold_source", "site_profile")}


def _old_log(db: Path, version: int = 1) -> None:
    """A log as schema ``version`` wrote it (without the columns added later), with one result."""
    later = {c for v, cols in ADDED_IN.items() if v > version for c in cols}
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA journal_mode = WAL")
    table = audit_log.SCHEMA[0].splitlines()
    raw.execute("\n".join(line for line in table if line.strip().split(" ")[0] not in later))
    raw.execute(f"PRAGMA application_id = {audit_log.APPLICATION_ID}")
    raw.execute(f"PRAGMA user_version = {version}")
    raw.execute(
        "INSERT INTO results (sha256, model_version, status, path, size, created_at, label) "
        "VALUES ('h1', ?, 'done', '/old.png', 1, '2024-01-01T00:00:00.000+00:00', 'NORMAL')",
        (V,),
    )
    raw.commit()
    raw.close()


def _version_1_log(db: Path) -> None:
    _old_log(db, 1)


def test_version_1_log_is_read_as_is_and_migrated_by_a_writer(db: Path) -> None:
    _version_1_log(db)
    before = digest(db)
    with AuditLog(db, readonly=True) as reader:
        [row] = reader.rows()
        assert row["path"] == "/old.png" and row["extra"] == {}
    assert digest(db) == before  # a reader never migrates
    with AuditLog(db) as log:
        claim = log.claim("h2", V, "/new.png", 1)
        log.record(claim, Result("/new.png", 0.2, 20, "NORMAL", False, 0.5, V, extra={"heatmap": "/hm/new.png"}))
        assert {r["path"]: r["extra"] for r in log.rows()} == {"/new.png": {"heatmap": "/hm/new.png"}, "/old.png": {}}
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == audit_log.SCHEMA_VERSION
    raw.close()


def test_reader_never_creates_a_log(tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match="no audit log"):
        AuditLog(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(AuditLogError, match="does not exist"):
        AuditLog(tmp_path / "no-such-folder" / "log.sqlite")


def test_reader_cannot_write(db: Path) -> None:
    with AuditLog(db) as log:
        log.record(log.claim("h", V, "/a", 1), ok())
    with AuditLog(db, readonly=True) as reader:
        assert len(reader.rows()) == 1
        with pytest.raises(AuditLogError, match="read-only"):
            reader.claim("h2", V, "/b", 1)


# --- screening one film exactly once (the call a server makes) -------------------------------


class CountingScreen:
    def __init__(self, result: Result):
        self.result, self.calls = result, 0

    def __call__(self) -> Result:
        self.calls += 1
        return Result(**{**self.result.__dict__, "extra": dict(self.result.extra)})


def test_record_screening_screens_a_content_once_and_returns_the_stored_result(db: Path) -> None:
    screen = CountingScreen(ok("/upload/a.png", 0.8))
    with AuditLog(db) as log:
        first = audit_log.record_screening(log, screen, sha256="h", path="/upload/a.png", size=3, model_version=V)
        again = audit_log.record_screening(log, screen, sha256="h", path="/elsewhere/b.png", size=3, model_version=V)
        v2 = CountingScreen(Result("/upload/a.png", 0.7, 70, "PNEUMONIA", False, 0.5, "v2", 3.0))
        other_model = audit_log.record_screening(log, v2, sha256="h", path="/upload/a.png", size=3, model_version="v2")
        assert first.status == "recorded" and first.stored and first.result.probability == 0.8
        assert again.status == "already" and again.recorded_as == "/upload/a.png"
        assert again.result.to_dict() == first.result.to_dict()  # the stored result, as predict prints it
        assert other_model.status == "recorded"
        assert screen.calls == 1 and v2.calls == 1
        assert sorted(e.model_version for e in log.entries()) == [V, "v2"]


def test_record_screening_releases_the_claim_when_the_file_changed_or_screening_raises(db: Path) -> None:
    with AuditLog(db) as log:
        changed = audit_log.record_screening(
            log, CountingScreen(ok()), sha256="h", path="/a", size=1, model_version=V, unchanged=lambda: False
        )
        assert changed.status == "changed" and log.rows() == []

        def explode() -> Result:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            audit_log.record_screening(log, explode, sha256="h", path="/a", size=1, model_version=V)
        assert log.rows() == []
        failed = audit_log.record_screening(
            log, CountingScreen(Result("/a", error="empty file")), sha256="h", path="/a", size=1, model_version=V
        )
        assert failed.status == "recorded" and [r["status"] for r in log.rows()] == ["error"]
        again = audit_log.record_screening(log, CountingScreen(ok()), sha256="h", path="/a", size=1, model_version=V)
        assert again.status == "already" and again.result.error == "empty file"
        retried = audit_log.record_screening(
            log, CountingScreen(ok()), sha256="h", path="/a", size=1, model_version=V, retry_errors=True
        )
        assert retried.status == "recorded" and [r["status"] for r in log.rows()] == ["done"]


def test_a_live_claim_is_reported_busy(db: Path) -> None:
    with AuditLog(db) as first, AuditLog(db) as second:
        first.claim("h", V, "/a", 1)
        busy = audit_log.record_screening(second, CountingScreen(ok()), sha256="h", path="/a", size=1, model_version=V)
        assert busy.status == "busy" and busy.result is None


def test_screen_file_once_hashes_the_content(db: Path, tmp_path: Path) -> None:
    class Screener:  # the two things screen_file_once uses of a real Screener
        class classifier:
            class contract:
                version = V

        calls: list[str] = []

        def screen(self, path: str) -> Result:
            self.calls.append(path)
            return ok(path)

    film = tmp_path / "a.png"
    film.write_bytes(b"film bytes")
    copy = tmp_path / "copy.png"
    copy.write_bytes(b"film bytes")
    screener = Screener()
    with AuditLog(db) as log:
        first = audit_log.screen_file_once(log, screener, film, name="upload-1")
        second = audit_log.screen_file_once(log, screener, copy)
    assert first.status == "recorded" and first.result.path == "upload-1"
    assert first.sha256 == hashlib.sha256(b"film bytes").hexdigest()
    assert second.status == "already" and second.recorded_as == "upload-1"
    assert screener.calls == [str(film)]


def test_version_2_log_gains_the_threshold_source_and_keeps_its_rows(db: Path) -> None:
    """A log written before site profiles: read as it is (no threshold source), then migrated by
    a writer, after which results record which rule decided them."""
    _old_log(db, 2)
    with AuditLog(db, readonly=True) as reader:
        [row] = reader.rows()
        assert row["path"] == "/old.png" and row["threshold_source"] is None and row["site_profile"] is None
    with AuditLog(db) as log:
        claim = log.claim("h2", V, "/new.png", 1)
        result = Result("/new.png", 0.2, 20, "NORMAL", False, 0.61, V, threshold_source="site", site_profile="ab12")
        log.record(claim, result)
        rows = {r["path"]: (r["threshold_source"], r["site_profile"], r["threshold"]) for r in log.rows()}
        assert rows == {"/new.png": ("site", "ab12", 0.61), "/old.png": (None, None, None)}
        [entry] = [e for e in log.entries() if e.result.path == "/new.png"]
        assert entry.result.to_dict()["threshold_source"] == "site"
