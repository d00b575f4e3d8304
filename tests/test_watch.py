"""``pneumoscan watch`` and ``history``: the loop with a fake scorer, then the real command on the
tiny model (crash with kill -9, signals, two watchers, read-only and corrupt databases)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import REPO, synthetic_film
from edge_app.audit_log import AuditLog
from edge_app.results import Result
from edge_app.watch import Watcher, default_db_path, stop_on_signals
from edge_app.cli import app as cli_app
from edge_app.formatting import CSV_COLUMNS, LOG_COLUMNS

TINY_MODEL = REPO / "tests" / "data" / "tiny-int8.tflite"
V = "v1"


class FakeScorer:
    """Scores by content: 'bad' files fail, others get a probability from their first byte."""

    def __init__(self, delay: float = 0.0, on_call=None):
        self.calls: list[tuple[str, str]] = []  # (path, sha256 of what was read)
        self.delay = delay
        self.on_call = on_call
        self.lock = threading.Lock()

    def __call__(self, path: str) -> Result:
        data = Path(path).read_bytes()
        with self.lock:
            self.calls.append((path, hashlib.sha256(data).hexdigest()))
        if self.on_call:
            self.on_call(path)
        time.sleep(self.delay)
        if data.startswith(b"bad"):
            return Result(path, error="not an image")
        p = data[-1] / 255
        return Result(path, p, round(100 * p), "PNEUMONIA" if p >= 0.5 else "NORMAL", False, 0.5, V)


def put(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def log(tmp_path: Path):
    with AuditLog(tmp_path / "log.sqlite") as opened:
        yield opened


def events(watcher_events: list) -> list[tuple[str, str]]:
    return [(event, Path(path).name) for event, path, _ in watcher_events]


def make_watcher(inbox: Path, log: AuditLog, scorer: FakeScorer, **kwargs):
    heard: list = []
    watcher = Watcher(inbox, log, scorer, V, report=lambda *e: heard.append(e), **kwargs)
    return watcher, heard


def test_default_db_is_beside_the_inbox(tmp_path: Path) -> None:
    assert default_db_path(tmp_path / "inbox") == tmp_path / "pneumoscan.sqlite"
    assert default_db_path(tmp_path / "inbox" / "") == tmp_path / "pneumoscan.sqlite"


def test_file_is_scored_only_after_it_stopped_growing(inbox: Path, log: AuditLog) -> None:
    scorer = FakeScorer()
    watcher, _ = make_watcher(inbox, log, scorer)
    growing = put(inbox, "a.png", b"first half")
    assert watcher.poll() == 0  # first sighting
    with open(growing, "ab") as handle:
        handle.write(b" and the rest\xff")
    assert watcher.poll() == 0  # grew since the last poll
    assert watcher.poll() == 1  # unchanged across two polls
    assert watcher.poll() == 0
    assert scorer.calls == [(str(growing), hashlib.sha256(growing.read_bytes()).hexdigest())]
    [row] = log.rows()
    assert row["size"] == growing.stat().st_size and row["status"] == "done"


def test_renamed_and_copied_images_are_not_scored_again(inbox: Path, log: AuditLog) -> None:
    scorer = FakeScorer()
    watcher, heard = make_watcher(inbox, log, scorer)
    put(inbox, "a.png", b"image A\x10")
    watcher.poll(), watcher.poll()
    (inbox / "a.png").rename(inbox / "a-renamed.png")
    (inbox / "sub").mkdir()
    shutil.copy(inbox / "a-renamed.png", inbox / "sub" / "copy.png")
    watcher.poll(), watcher.poll(), watcher.poll()
    assert len(scorer.calls) == 1
    assert [r["path"] for r in log.rows()] == [str(inbox / "a.png")]
    assert ("skipped", "a-renamed.png") in events(heard) and ("skipped", "copy.png") in events(heard)


def test_duplicates_within_one_poll_are_scored_once(inbox: Path, log: AuditLog) -> None:
    scorer = FakeScorer()
    watcher, _ = make_watcher(inbox, log, scorer)
    for name in ("x.png", "y.png", "z/x.png"):
        put(inbox, name, b"same bytes\x80")
    watcher.run(interval=0.01, once=True)
    assert len(scorer.calls) == 1 and len(log.rows()) == 1


def test_failed_image_is_recorded_once_and_retried_only_on_request(inbox: Path, log: AuditLog) -> None:
    put(inbox, "bad.jpg", b"bad bytes")
    put(inbox, "good.png", b"good\x01")
    scorer = FakeScorer()
    watcher, _ = make_watcher(inbox, log, scorer)
    stats = watcher.run(interval=0.01, once=True)
    assert (stats.scored, stats.failed) == (1, 1)
    watcher.poll(), watcher.poll()
    restarted, _ = make_watcher(inbox, log, scorer)
    restarted.run(interval=0.01, once=True)
    assert len(scorer.calls) == 2  # neither the same watcher nor a restart tries it again
    retrying, _ = make_watcher(inbox, log, scorer, retry_errors=True)
    retrying.poll(), retrying.poll(), retrying.poll()
    assert [Path(p).name for p, _ in scorer.calls].count("bad.jpg") == 2  # once more, not forever
    assert {r["path"].rsplit("/", 1)[1]: r["status"] for r in log.rows()} == {"bad.jpg": "error", "good.png": "done"}


def test_restart_does_not_rehash_recorded_files(inbox: Path, log: AuditLog, monkeypatch) -> None:
    for i in range(3):
        put(inbox, f"{i}.png", bytes([i]) * 10)
    make_watcher(inbox, log, FakeScorer())[0].run(interval=0.01, once=True)
    hashed = []
    monkeypatch.setattr("edge_app.watch.sha256_file", lambda p: hashed.append(p) or "x")
    restarted, _ = make_watcher(inbox, log, FakeScorer())
    assert restarted.poll() == 0 and restarted.poll() == 0
    assert hashed == []


def test_file_rewritten_while_scored_is_scored_again(inbox: Path, log: AuditLog) -> None:
    target = put(inbox, "a.png", b"old\x01")

    def rewrite_once(path: str) -> None:
        if len(scorer.calls) == 1:
            with open(path, "ab") as handle:
                handle.write(b"new\xfe")

    scorer = FakeScorer(on_call=rewrite_once)
    watcher, _ = make_watcher(inbox, log, scorer)
    watcher.poll(), watcher.poll()
    assert log.rows() == []  # the result for the old bytes was not recorded
    watcher.poll(), watcher.poll()
    [row] = log.rows()
    assert row["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert row["score"] == 100


def test_interrupted_scoring_releases_the_claim(inbox: Path, log: AuditLog) -> None:
    put(inbox, "a.png", b"a\x01")

    def interrupt(path: str) -> None:
        raise KeyboardInterrupt

    watcher, _ = make_watcher(inbox, log, FakeScorer(on_call=interrupt))
    watcher.poll()
    with pytest.raises(KeyboardInterrupt):
        watcher.poll()
    assert log.rows() == []
    make_watcher(inbox, log, FakeScorer())[0].run(interval=0.01, once=True)
    assert [r["status"] for r in log.rows()] == ["done"]


def test_stop_finishes_the_current_image(inbox: Path, log: AuditLog) -> None:
    for i in range(5):
        put(inbox, f"{i}.png", bytes([i]) * 10)
    watcher, _ = make_watcher(inbox, log, FakeScorer(on_call=lambda path: watcher.stop()))
    stats = watcher.run(interval=0.01)  # not --once: only stop() ends it
    assert stats.scored == 1 and [r["status"] for r in log.rows()] == ["done"]


def test_signal_asks_to_stop_and_a_second_one_aborts(inbox: Path, log: AuditLog) -> None:
    watcher, _ = make_watcher(inbox, log, FakeScorer())
    heard = []
    with stop_on_signals(watcher, heard.append):
        os.kill(os.getpid(), signal.SIGTERM)
        assert watcher.stop_requested and heard == ["SIGTERM"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_idle_watcher_sleeps_between_polls(inbox: Path, log: AuditLog) -> None:
    watcher, _ = make_watcher(inbox, log, FakeScorer())
    threading.Timer(0.6, watcher.stop).start()
    cpu, wall = time.process_time(), time.monotonic()
    stats = watcher.run(interval=0.2)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert 2 <= stats.polls <= wall / 0.2 + 1
    assert cpu < 0.5 * wall  # no busy loop


def test_two_watchers_never_score_the_same_image(inbox: Path, tmp_path: Path) -> None:
    for i in range(30):
        put(inbox, f"{i:02d}.png", bytes([i]) * 100)
    scorer = FakeScorer(delay=0.005)

    def run() -> None:
        with AuditLog(tmp_path / "shared.sqlite") as own:
            Watcher(inbox, own, scorer, V).run(interval=0.01, once=True)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hashes = [h for _, h in scorer.calls]
    assert len(hashes) == len(set(hashes)) == 30
    with AuditLog(tmp_path / "shared.sqlite", readonly=True) as reader:
        assert len(reader.rows()) == 30


def test_missing_inbox_is_reported_once_and_watched_for(tmp_path: Path, log: AuditLog) -> None:
    inbox = tmp_path / "usb-stick"
    watcher, heard = make_watcher(inbox, log, FakeScorer())
    watcher.poll(), watcher.poll()
    assert [e for e, _, _ in heard] == ["warning"]
    inbox.mkdir()
    put(inbox, "a.png", b"a\x01")
    watcher.poll(), watcher.poll()
    assert events(heard)[1:] == [("scored", "a.png")]


def test_inputs_are_never_modified(inbox: Path, log: AuditLog) -> None:
    files = [put(inbox, "a.png", b"a\x01"), put(inbox, "bad.jpg", b"bad"), put(inbox, "d/b.jpeg", b"b\x02")]
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    make_watcher(inbox, log, FakeScorer())[0].run(interval=0.01, once=True)
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before
    assert sorted(p.name for p in inbox.rglob("*")) == ["a.png", "b.jpeg", "bad.jpg", "d"]


# --- history ---------------------------------------------------------------------------------


def test_history_formats(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with AuditLog(db) as log:
        log.record(log.claim("h1", V, "/in/a.png", 1, 1), Result("/in/a.png", 0.9, 90, "PNEUMONIA", False, 0.5, V))
        time.sleep(0.002)
        log.record(log.claim("h2", V, "/in/b.jpg", 1, 1), Result("/in/b.jpg", error="empty file"))
    runner = CliRunner()
    table = runner.invoke(cli_app, ["history", "--db", str(db)])
    assert table.exit_code == 0, table.output
    assert table.output.index("/in/b.jpg") < table.output.index("/in/a.png")  # newest first
    assert "could not screen: empty file" in table.output
    rows = json.loads(runner.invoke(cli_app, ["history", "--db", str(db), "-f", "json"]).output)
    assert [r["path"] for r in rows] == ["/in/b.jpg", "/in/a.png"] and rows[1]["score"] == 90
    csv_lines = runner.invoke(cli_app, ["history", "--db", str(db), "-f", "csv"]).output.splitlines()
    # the same columns as ``predict --format csv``, then what only the log knows
    assert csv_lines[0] == ",".join([*CSV_COLUMNS, *LOG_COLUMNS]) and len(csv_lines) == 3
    later = runner.invoke(cli_app, ["history", "--db", str(db), "--since", "2999-01-01"])
    assert later.exit_code == 0 and "No results" in later.output
    today = json.loads(runner.invoke(cli_app, ["history", "--db", str(db), "--since", "today", "-f", "json"]).output)
    assert len(today) == 2
    bad = runner.invoke(cli_app, ["history", "--db", str(db), "--since", "last week"])
    assert bad.exit_code == 2
    missing = runner.invoke(cli_app, ["history", "--db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no audit log" in missing.output


# --- the real command on the tiny model ------------------------------------------------------

needs_model = pytest.mark.skipif(not TINY_MODEL.is_file(), reason="tests/data/tiny-int8.tflite is absent")
N_IMAGES = 50


@pytest.fixture(scope="module")
def film_folder(tmp_path_factory) -> Path:
    """50 distinct 640 px PNG films (slow enough to score that a kill lands mid-way)."""
    folder = tmp_path_factory.mktemp("films")
    base = synthetic_film(640)
    for i in range(N_IMAGES):
        img = base.copy()
        img[:4, :4] = np.uint8(i)
        Image.fromarray(img).save(folder / f"film-{i:02d}.png", compress_level=1)
    return folder


def fresh_inbox(film_folder: Path, tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    shutil.copytree(film_folder, inbox)
    return inbox


def watch_cmd(inbox: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edge_app", "watch", str(inbox), "--db", str(db),
            "--model", str(TINY_MODEL), "--interval", "0.1", *extra]


def run_env() -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def db_rows(db: Path) -> list[tuple]:
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return raw.execute("SELECT path, status, sha256 FROM results").fetchall()
    finally:
        raw.close()


def handled_line(line: str) -> bool:
    """A watcher's stdout line for an image it scored (or recorded as failed)."""
    return " scored " in line or " failed " in line


def assert_each_image_once(db: Path, inbox: Path) -> None:
    rows = db_rows(db)
    assert len(rows) == N_IMAGES
    assert {status for _, status, _ in rows} <= {"done", "error"}  # nothing left pending
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in inbox.glob("*.png")}
    assert {sha for _, _, sha in rows} == expected


@needs_model
def test_kill_9_mid_way_then_once_completes_exactly(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log.sqlite"
    proc = subprocess.Popen(watch_cmd(inbox, db), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=run_env(), text=True)
    handled = 0
    try:
        for line in proc.stdout:
            handled += handled_line(line)
            if handled == 10:
                break
    finally:
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
    at_kill = db_rows(db)
    assert 10 <= len(at_kill) < N_IMAGES, "the kill did not land mid-way"
    done = subprocess.run(watch_cmd(inbox, db, "--once"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_each_image_once(db, inbox)
    assert sum(map(handled_line, done.stdout.splitlines())) == N_IMAGES - sum(s != "pending" for _, s, _ in at_kill)


@needs_model
def test_repeated_kill_9_at_any_moment_loses_and_duplicates_nothing(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log.sqlite"
    rng = np.random.default_rng(7)
    for delay in rng.uniform(0.2, 1.2, size=4):  # during start-up, schema creation, claims, records
        proc = subprocess.Popen(watch_cmd(inbox, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait()
    done = subprocess.run(watch_cmd(inbox, db, "--once"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_each_image_once(db, inbox)


@needs_model
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(film_folder: Path, tmp_path: Path, sig: signal.Signals) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log.sqlite"
    proc = subprocess.Popen(watch_cmd(inbox, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env(), text=True)
    for line in proc.stdout:
        if handled_line(line):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"{sig.name}: finishing the current image" in err
    statuses = [s for _, s, _ in db_rows(db)]
    assert statuses and set(statuses) <= {"done", "error"}  # nothing left half-done


@needs_model
def test_two_watcher_processes_share_the_work(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log.sqlite"
    AuditLog(db).close()  # both start on an existing log
    procs = [subprocess.Popen(watch_cmd(inbox, db, "--once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    assert sum(handled_line(line) for out, _ in outputs for line in out.splitlines()) == N_IMAGES  # nobody scored twice
    assert_each_image_once(db, inbox)


@needs_model
def test_extensionless_dicom_is_screened_and_its_header_recorded(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    from edge_app.classifier import Classifier
    from edge_app.screening import Screener
    from test_dicom import make_dataset, save

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    save(make_dataset(synthetic_film(256).astype(np.uint16) * 16, 12), inbox / "IM000012")
    with AuditLog(tmp_path / "log.sqlite") as log:
        classifier = Classifier(TINY_MODEL)
        stats = Watcher(inbox, log, Screener(classifier).screen, classifier.contract.version).run(0.01, once=True)
        [row] = log.rows()
    assert stats.scored == 1 and row["path"].endswith("IM000012") and row["status"] == "done"
    assert row["extra"]["dicom"]["modality"] == "DX"
    assert "patient_id" not in row["extra"]["dicom"]  # identifiers only with --with-ids


@needs_model
def test_heatmaps_go_to_their_folder_and_into_the_log(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "log.sqlite"
    inbox.mkdir()
    for name in ("film-00.png", "film-01.png"):
        shutil.copy(film_folder / name, inbox / name)
    inside = subprocess.run(watch_cmd(inbox, db, "--once", "--heatmap", str(inbox / "maps")), capture_output=True, text=True)
    assert inside.returncode == 2 and "inside the input folder" in inside.stderr
    assert not (inbox / "maps").exists()
    done = subprocess.run(watch_cmd(inbox, db, "--once", "--heatmap", str(tmp_path / "maps")), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with AuditLog(db, readonly=True) as reader:
        recorded = sorted(Path(r["extra"]["heatmap"]) for r in reader.rows())
    assert recorded == sorted((tmp_path / "maps").iterdir()) and len(recorded) == 2
    assert sorted(p.name for p in inbox.iterdir()) == ["film-00.png", "film-01.png"]


def _without_root_override():
    """Make the child obey file permissions even as root, by dropping CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from its capability bounding set (root ignores chmod otherwise)."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2

    def drop() -> None:
        for cap in (cap_dac_override, cap_dac_read_search):
            if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
                os._exit(99)

    probe = subprocess.run(["true"], preexec_fn=drop)
    if probe.returncode != 0:
        pytest.skip("running as root without the right to drop capabilities")
    return drop


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@needs_model
@pytest.mark.parametrize("folder_too", [False, True], ids=["file", "file-and-folder"])
def test_read_only_log_is_reported_untouched(film_folder: Path, tmp_path: Path, folder_too: bool) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log" / "log.sqlite"
    db.parent.mkdir()
    with AuditLog(db) as log:
        log.record(log.claim("h", "test", "/old.png", 1, 1), Result("/old.png", 0.1, 10, "NORMAL", False, 0.5, "test"))
    db.chmod(0o444)
    db.parent.chmod(0o555 if folder_too else 0o755)
    try:
        before = _digests(db.parent)
        preexec = _without_root_override()
        done = subprocess.run(watch_cmd(inbox, db, "--once"), capture_output=True, text=True, timeout=60, preexec_fn=preexec)
        assert done.returncode == 2
        assert "read-only" in done.stderr and "left untouched" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        shown = subprocess.run([sys.executable, "-m", "edge_app", "history", "--db", str(db), "-f", "csv"],
                               capture_output=True, text=True, timeout=60, preexec_fn=preexec)
        assert shown.returncode == 0, shown.stderr  # the register can still be exported
        assert "/old.png" in shown.stdout
        assert {k: v for k, v in _digests(db.parent).items() if k == db.name} == {db.name: before[db.name]}
    finally:
        db.parent.chmod(0o755)


@needs_model
def test_corrupt_log_is_reported_untouched(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = fresh_inbox(film_folder, tmp_path), tmp_path / "log.sqlite"
    db.write_bytes(os.urandom(8192))
    before = db.read_bytes()
    done = subprocess.run(watch_cmd(inbox, db, "--once"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a readable pneumoscan audit log" in done.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inbox", "log.sqlite"]


@needs_model
def test_sigterm_stops_within_2_s_with_a_named_pipe_in_the_inbox(film_folder: Path, tmp_path: Path) -> None:
    inbox, db = tmp_path / "inbox", tmp_path / "log.sqlite"
    inbox.mkdir()
    shutil.copy(next(film_folder.glob("*.png")), inbox / "a.png")
    os.mkfifo(inbox / "IM0001")  # opening it would block until someone writes
    os.mkfifo(inbox / "b.png")
    proc = subprocess.Popen(watch_cmd(inbox, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env(), text=True)
    try:
        for line in proc.stdout:
            if handled_line(line):
                break
        time.sleep(0.5)  # a few more polls over the pipes
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 2.0
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "IM0001  not a regular file (a named pipe)" in err and "b.png  not a regular file (a named pipe)" in err
    assert err.count("IM0001") == 1  # warned once, not at every poll
    assert [s for _, s, _ in db_rows(db)] == ["done"]


def test_watch_aborts_an_image_that_takes_too_long_after_sigterm(inbox: Path, log: AuditLog) -> None:
    from edge_app import watch as watch_module

    (inbox / "a.png").write_bytes(b"x")

    def stuck(path: str) -> Result:  # e.g. a hung network file system
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        raise AssertionError("not aborted")

    watcher = Watcher(inbox, log, stuck, "v1")
    watcher.poll()  # first sight: waits for the file to settle
    start = time.monotonic()
    with stop_on_signals(watcher), pytest.raises(KeyboardInterrupt):
        watcher.poll()
    assert time.monotonic() - start < watch_module.STOP_GRACE_S + 0.5
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no alarm left armed


def test_db_inside_the_inbox_is_refused(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    done = CliRunner().invoke(cli_app, ["watch", str(inbox), "--db", str(inbox / "log.sqlite"), "--model", str(TINY_MODEL), "--once"])
    assert done.exit_code == 2 and "is inside the input folder" in done.stderr and not (inbox / "log.sqlite").exists()


def test_a_pattern_model_s_pattern_goes_into_the_log_and_history(tmp_path: Path) -> None:
    from edge_helpers import TINY_PATTERN_MODEL, pattern_films

    inbox, db = tmp_path / "inbox", tmp_path / "log.sqlite"
    inbox.mkdir()
    films = pattern_films(inbox)
    cmd = [sys.executable, "-m", "edge_app", "watch", str(inbox), "--db", str(db), "--model", str(TINY_PATTERN_MODEL), "--once", "--no-gate"]  # the gate is not under test
    done = subprocess.run(cmd, capture_output=True, text=True, env=run_env())
    assert done.returncode == 0, done.stderr
    assert "pattern viral" in done.stdout + done.stderr
    rows = {Path(r["path"]).stem: r for r in json.loads(CliRunner().invoke(cli_app, ["history", "--db", str(db), "-f", "json"]).output)}
    assert set(rows) == set(films)
    assert rows["viral"]["pattern"] == "viral" and isinstance(rows["viral"]["pattern_score"], int)
    assert rows["clear"]["pattern"] is None
    header = CliRunner().invoke(cli_app, ["history", "--db", str(db), "-f", "csv"]).output.splitlines()[0].split(",")
    assert header[len(CSV_COLUMNS):len(CSV_COLUMNS) + 2] == ["pattern", "pattern_score"]
