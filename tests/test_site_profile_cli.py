"""A site profile in use: ``predict``, ``watch``, ``history`` (and ``--by-day``) and ``info``.

Every result says which threshold decided it (``threshold_source`` and ``site_profile``), in
JSON, CSV and the audit log; a profile made for another model stops every command with one line.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import synthetic_film, write_dataset
from edge_app import cli
from edge_app.site_profile import ENV_VAR, default_site_path, load_profile
from edge_helpers import tiny_metadata, tiny_model  # noqa: F401

runner = CliRunner()


def run(*args, env: dict | None = None):
    return runner.invoke(cli.app, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("PNEUMOSCAN_MODEL", ENV_VAR, "PNEUMOSCAN_RUNTIME", "PNEUMOSCAN_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def site(tmp_path, tiny_model) -> Path:
    """A profile calibrated for the tiny model on 20 + 20 synthetic films."""
    labelled = write_dataset(tmp_path / "labelled", per_class=20, size=(96, 128, 160)) / "train"
    out = tmp_path / "site.json"
    result = run("calibrate", labelled, "--out", out, "--model", tiny_model, "--sensitivity", "0.8")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def foreign(site, tmp_path) -> Path:
    """The same profile, claiming to be made for another model."""
    data = json.loads(site.read_text())
    data.update(model_version="0.1.0+000000000000", weights_sha256="0" * 64)
    path = tmp_path / "other-model.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def films(tmp_path) -> Path:
    folder = tmp_path / "films"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_film(128, seed=50 + i, opacity=float(i == 0))).save(folder / f"f{i}.png")
    return folder


def test_predict_with_site_says_so_in_json_csv_and_table(site, films, tiny_model):
    profile = load_profile(site)
    rows = json.loads(run("predict", films, "-m", tiny_model, "--site", site, "-f", "json").stdout)
    assert {(r["threshold"], r["threshold_source"], r["site_profile"]) for r in rows} == {
        (profile.threshold, "site", profile.hash)
    }
    for r in rows:  # the site's threshold and band decide
        assert r["label"] == ("PNEUMONIA" if r["probability"] >= profile.threshold else "NORMAL")
        assert r["uncertain"] == (profile.band[0] <= r["probability"] <= profile.band[1])
    table = csv.DictReader(io.StringIO(run("predict", films, "-m", tiny_model, "--site", site, "-f", "csv").stdout))
    assert {(r["threshold_source"], r["site_profile"]) for r in table} == {("site", profile.hash)}
    text = run("predict", films, "-m", tiny_model, "--site", site).stdout
    assert f"(site profile {profile.hash})" in text


def test_without_a_profile_the_model_decides_and_says_so(films, tiny_model):
    rows = json.loads(run("predict", films, "-m", tiny_model, "-f", "json").stdout)
    assert {(r["threshold"], r["threshold_source"], r["site_profile"]) for r in rows} == {
        (tiny_metadata()["threshold"], "model", None)
    }


def test_environment_then_default_location_and_no_site(site, films, tiny_model, tmp_path, monkeypatch):
    digest = load_profile(site).hash
    source = lambda *extra: {  # noqa: E731
        (r["threshold_source"], r["site_profile"])
        for r in json.loads(run("predict", films, "-m", tiny_model, "-f", "json", *extra).stdout)
    }
    monkeypatch.setenv(ENV_VAR, str(site))
    assert source() == {("site", digest)}
    monkeypatch.delenv(ENV_VAR)
    default_site_path().parent.mkdir(parents=True)
    default_site_path().write_bytes(site.read_bytes())
    assert source() == {("site", digest)}  # same content, same hash, wherever it lives
    assert source("--no-site") == {("model", None)}
    forced = json.loads(run("predict", films, "-m", tiny_model, "-f", "json", "--threshold", "0.9").stdout)
    assert {(r["threshold"], r["threshold_source"]) for r in forced} == {(0.9, "option")}


@pytest.mark.parametrize("command", ["predict", "watch", "history", "info"])
def test_a_profile_for_another_model_is_refused_in_one_line(foreign, films, tiny_model, tmp_path, command):
    args = {
        "predict": ("predict", films, "-m", tiny_model),
        "watch": ("watch", films, "--once", "--db", tmp_path / "log.sqlite", "-m", tiny_model),
        "history": ("history", "--by-day", "--db", tmp_path / "log.sqlite", "-m", tiny_model),
        "info": ("info", "-m", tiny_model, "-f", "json"),
    }[command]
    if command == "history":
        assert run("watch", films, "--once", "--db", tmp_path / "log.sqlite", "-m", tiny_model).exit_code == 0
    result = run(*args, "--site", foreign)
    expected = f"site profile {foreign} was made for model 0.1.0+000000000000, not {tiny_metadata()['version']}"
    if command == "info":  # info shows why, and still shows the model
        assert result.exit_code == 0
        details = json.loads(result.stdout)
        assert expected in details["site_profile"]["error"] and not details["site_profile"]["active"]
        return
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and result.stdout == ""
    if command == "watch":
        assert not (tmp_path / "log.sqlite").exists()  # refused before the log is created


def test_a_malformed_or_missing_profile_is_refused(films, tiny_model, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = run("predict", films, "-m", tiny_model, "--site", bad)
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    result = run("predict", films, "-m", tiny_model, "--site", tmp_path / "none.json")
    assert result.exit_code == 2 and "not found" in result.stderr


def test_info_shows_the_active_profile(site, tiny_model):
    profile = load_profile(site)
    details = json.loads(run("info", "-m", tiny_model, "--site", site, "-f", "json").stdout)["site_profile"]
    assert details["active"] and details["hash"] == profile.hash and details["threshold"] == profile.threshold
    assert details["path"] == str(site) and details["counts"]["NORMAL"] == 20
    table = run("info", "-m", tiny_model, "--site", site).stdout
    assert "site_profile.hash" in table and profile.hash in table
    none = json.loads(run("info", "-m", tiny_model, "-f", "json").stdout)["site_profile"]
    assert not none["active"] and none["threshold_source"] == "model"


def test_watch_records_the_rule_in_the_audit_log_and_history_exports_it(site, films, tiny_model, tmp_path):
    db = tmp_path / "log.sqlite"
    result = run("watch", films, "--once", "--db", db, "-m", tiny_model, "--site", site)
    assert result.exit_code == 0, result.output
    profile = load_profile(site)
    assert f"site profile {profile.hash}" in result.stderr
    rows = json.loads(run("history", "--db", db, "-f", "json").stdout)
    assert len(rows) == 3
    assert {(r["threshold"], r["threshold_source"], r["site_profile"]) for r in rows} == {
        (profile.threshold, "site", profile.hash)
    }
    exported = list(csv.DictReader(io.StringIO(run("history", "--db", db, "-f", "csv").stdout)))
    assert {(r["threshold_source"], r["site_profile"]) for r in exported} == {("site", profile.hash)}
    raw = sqlite3.connect(db)
    assert raw.execute("SELECT DISTINCT threshold_source, site_profile FROM results").fetchall() == [("site", profile.hash)]
    raw.close()


def _move_to_day(db: Path, names: list[str], day: datetime) -> None:
    raw = sqlite3.connect(db)
    stamp = day.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    for name in names:
        raw.execute("UPDATE results SET created_at = ? WHERE path LIKE ?", (stamp, f"%/{name}"))
    raw.commit()
    raw.close()


def test_history_by_day_flags_a_day_referring_far_more_than_calibration(site, tiny_model, tmp_path):
    """Two days of 16 films: the first like calibration (half pneumonia), the second almost all
    pneumonia; the profile expects half referred, so only the second day is flagged."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    day1, day2 = [], []
    for i in range(32):
        sick = i < 8 or i >= 16 and i < 31  # day 1: 8 of 16, day 2: 15 of 16
        name = f"film{i:02d}.png"
        Image.fromarray(synthetic_film(128, seed=200 + i, opacity=float(sick))).save(inbox / name)
        (day1 if i < 16 else day2).append(name)
    db = tmp_path / "log.sqlite"
    assert run("watch", inbox, "--once", "--db", db, "-m", tiny_model, "--site", site).exit_code == 0
    noon = datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    _move_to_day(db, day1, noon - timedelta(days=2))
    _move_to_day(db, day2, noon - timedelta(days=1))

    result = run("history", "--by-day", "--db", db, "-m", tiny_model, "--site", site, "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["threshold_source"] == "site" and report["site_profile"] == load_profile(site).hash
    days = report["days"]
    assert [d["screened"] for d in days] == [16, 16]
    assert [d["referred"] for d in days] == [8, 15]
    assert [d["flag"] for d in days] == [None, "high"]
    table = run("history", "--by-day", "--db", db, "-m", tiny_model, "--site", site).stdout
    assert "more referred than expected" in table and "1 of 2 day(s) outside the expected range" in table
    bare = run("history", "--by-day", "--db", db, "-m", tiny_model, "--no-site").stdout
    assert "No site profile: no expected range" in bare
