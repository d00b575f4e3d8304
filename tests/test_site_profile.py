"""``edge_app.site_profile``: build, write (atomically, never over a file), load, validate, refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_app.calibration import calibrate
from edge_app.contract import read_contract
from edge_app.site_profile import (
    ENV_VAR,
    SiteProfileError,
    build_profile,
    default_site_path,
    load_profile,
    operating_point,
    resolve_site,
    write_profile,
)
from edge_helpers import TINY_MODEL


@pytest.fixture
def contract():
    return read_contract(TINY_MODEL)


@pytest.fixture
def profile_data(contract) -> dict:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(120, bool), np.ones(200, bool)]
    scores = np.r_[rng.beta(2, 6, 120), rng.beta(6, 2, 200)]
    cal = calibrate(labels, scores, model_threshold=contract.threshold)
    return build_profile(cal, contract, labelled="folder site-films", refused=3)


def test_profile_records_what_a_reviewer_and_the_device_need(profile_data, contract):
    d = profile_data
    assert d["model_version"] == contract.version
    assert d["weights_sha256"] == contract.raw["weights_sha256"]
    assert d["counts"] == {"NORMAL": 120, "PNEUMONIA": 200, "refused": 3}
    assert d["uncertain_band"][0] <= d["threshold"] <= d["uncertain_band"][1]
    assert "sensitivity >= 0.95" in d["threshold_rule"] and d["created"].endswith("Z")
    assert any("recommended" in row["why"] for row in d["table"]) and d["auc"]["method"] == "DeLong"
    assert d["expected"]["share_referred"]["low"] <= d["expected"]["share_referred"]["value"]
    json.dumps(d, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_write_then_load_round_trips_and_the_hash_tracks_every_edit(profile_data, tmp_path):
    path = tmp_path / "site.json"
    written = write_profile(profile_data, path)
    loaded = load_profile(path)
    assert loaded.threshold == pytest.approx(profile_data["threshold"])
    assert loaded.hash == written.hash and len(loaded.hash) == 16
    edited = json.loads(path.read_text())
    edited["threshold"] = round(edited["threshold"] - 1e-6, 8)
    path.write_text(json.dumps(edited, indent=4))
    assert load_profile(path).hash != loaded.hash
    assert [p.name for p in tmp_path.iterdir()] == ["site.json"]  # no temporary file left behind


def test_never_overwrites_without_force(profile_data, tmp_path):
    path = tmp_path / "site.json"
    path.write_text("the supervisor's notes\n")
    with pytest.raises(SiteProfileError, match="already exists; refusing to overwrite it"):
        write_profile(profile_data, path)
    assert path.read_text() == "the supervisor's notes\n"
    write_profile(profile_data, path, force=True)
    assert load_profile(path).threshold == pytest.approx(profile_data["threshold"])


def test_refuses_a_profile_made_for_another_model(profile_data, contract, tmp_path):
    other = {**profile_data, "weights_sha256": "0" * 64, "model_version": "0.1.0+000000000000"}
    path = tmp_path / "site.json"
    write_profile(other, path)
    profile = load_profile(path)
    with pytest.raises(SiteProfileError) as error:
        operating_point(contract, profile)
    message = str(error.value)
    assert f"was made for model 0.1.0+000000000000, not {contract.version}" in message
    assert str(path) in message and "\n" not in message


def test_operating_point_precedence(profile_data, contract, tmp_path):
    profile = write_profile(profile_data, tmp_path / "site.json")
    model = operating_point(contract, None)
    assert (model.source, model.threshold, model.profile) == ("model", contract.threshold, None)
    site = operating_point(contract, profile)
    assert (site.source, site.threshold, site.profile) == ("site", profile.threshold, profile.hash)
    assert site.band == profile.band
    forced = operating_point(contract, profile, threshold=0.7)
    assert (forced.source, forced.threshold) == ("option", 0.7)


@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda d: d.pop("weights_sha256"), "lacks weights_sha256"),
        (lambda d: d.update(format="pneumoscan-site/9"), "format 'pneumoscan-site/9'"),
        (lambda d: d.update(threshold=1.5), "not inside (0, 1)"),
        (lambda d: d.update(threshold="high"), "not a number"),
        (lambda d: d.update(uncertain_band=[0.9, 0.95]), "does not contain threshold"),
        (lambda d: d.update(model_version=""), "model_version must be"),
    ],
)
def test_malformed_profiles_are_one_line_each(profile_data, tmp_path, edit, expected):
    path = tmp_path / "site.json"
    edit(profile_data)
    path.write_text(json.dumps(profile_data))
    with pytest.raises(SiteProfileError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_profile(path)
    with pytest.raises(SiteProfileError):
        write_profile(profile_data, tmp_path / "new.json")  # nor is such a profile ever written
    assert not (tmp_path / "new.json").exists()


def test_unreadable_files(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SiteProfileError, match="not valid JSON"):
        load_profile(tmp_path / "bad.json")
    with pytest.raises(SiteProfileError, match="not found"):
        load_profile(tmp_path / "missing.json")
    with pytest.raises(SiteProfileError, match="is a folder"):
        load_profile(tmp_path)


def test_resolution_option_then_environment_then_default(profile_data, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_site_path() == tmp_path / "config" / "pneumoscan" / "site.json"
    assert resolve_site() is None  # no default file: the model's own threshold
    default_site_path().parent.mkdir(parents=True)
    default = write_profile(profile_data, default_site_path())
    assert resolve_site().hash == default.hash
    other = write_profile({**profile_data, "created": "2026-01-01T00:00:00Z"}, tmp_path / "env.json")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.json"))
    assert resolve_site().hash == other.hash
    assert resolve_site(default_site_path()).hash == default.hash
    assert resolve_site(disabled=True) is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.json"))
    with pytest.raises(SiteProfileError, match="not found"):
        resolve_site()  # a profile asked for by name must exist
