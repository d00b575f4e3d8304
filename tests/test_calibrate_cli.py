"""``pneumoscan calibrate`` end to end: a profile from labelled films, and no profile from bad ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import synthetic_film, write_dataset
from edge_app import cli
from edge_app.site_profile import load_profile
from edge_helpers import tiny_metadata, tiny_model  # noqa: F401

runner = CliRunner()


def run(*args, env: dict | None = None):
    return runner.invoke(cli.app, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("PNEUMOSCAN_MODEL", "PNEUMOSCAN_SITE", "PNEUMOSCAN_RUNTIME", "PNEUMOSCAN_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


@pytest.fixture
def labelled(tmp_path) -> Path:
    """``NORMAL/`` and ``PNEUMONIA/`` with 20 synthetic films each, in three sizes."""
    return write_dataset(tmp_path / "site", per_class=20, size=(96, 128, 160)) / "train"


def test_writes_a_profile_for_this_model_with_table_and_plots(labelled, tiny_model, tmp_path):
    out = tmp_path / "site.json"
    result = run("calibrate", labelled, "--out", out, "--model", tiny_model)
    assert result.exit_code == 0, result.output
    profile = load_profile(out)
    meta = tiny_metadata()
    assert profile.model_version == meta["version"] and profile.weights_sha256 == meta["weights_sha256"]
    assert profile.raw["counts"] == {"NORMAL": 20, "PNEUMONIA": 20, "refused": 0}
    assert profile.raw["sensitivity_target"] == 0.95
    assert f"Wrote {out} (profile {profile.hash})" in result.stdout
    assert re.search(r"THRESHOLD\s+SENSITIVITY\s+SPECIFICITY\s+PPV\s+NPV\s+REFERRED", result.stdout)
    assert "AUC" in result.stdout and "recommended" in result.stdout
    # 20 films a class is too few, and it says so
    assert "only 20 PNEUMONIA films" in result.stderr and "only 20 NORMAL films" in result.stderr
    assert profile.raw["warnings"]
    if _has_matplotlib():
        assert (tmp_path / "site-roc.png").is_file() and (tmp_path / "site-thresholds.png").is_file()
    else:
        assert "plots skipped" in result.stderr


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def test_sensitivity_option_moves_the_rule_and_json_report_is_the_profile(labelled, tiny_model, tmp_path):
    result = run("calibrate", labelled, "--out", tmp_path / "s.json", "--model", tiny_model,
                 "--sensitivity", "0.8", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sensitivity_target"] == 0.8 and "sensitivity >= 0.8" in report["threshold_rule"]
    assert report["site_profile"] == load_profile(tmp_path / "s.json").hash


def test_refused_films_are_listed_and_left_out(labelled, tiny_model, tmp_path):
    photo = np.zeros((120, 120, 3), np.uint8)
    photo[..., 0] = 230  # a red square: the input gate refuses it
    Image.fromarray(photo).save(labelled / "NORMAL" / "holiday.jpeg")
    (labelled / "PNEUMONIA" / "broken.jpeg").write_bytes(b"\xff\xd8 not really")
    result = run("calibrate", labelled, "--out", tmp_path / "site.json", "--model", tiny_model)
    assert result.exit_code == 0, result.output
    assert re.search(r"left out: .*holiday\.jpeg: not a chest X-ray", result.stderr)
    assert re.search(r"left out: .*broken\.jpeg: ", result.stderr)
    assert "2 of 42 films could not be screened" in result.stderr
    counts = load_profile(tmp_path / "site.json").raw["counts"]
    assert counts == {"NORMAL": 20, "PNEUMONIA": 20, "refused": 2}


def test_never_overwrites_a_profile_or_plot_without_force(labelled, tiny_model, tmp_path):
    out = tmp_path / "site.json"
    out.write_text("keep\n")
    result = run("calibrate", labelled, "--out", out, "--model", tiny_model)
    assert result.exit_code == 2 and "already exists; refusing to overwrite it (use --force)" in result.stderr
    assert out.read_text() == "keep\n"
    out.unlink()
    (tmp_path / "site-roc.png").write_bytes(b"keep")
    result = run("calibrate", labelled, "--out", out, "--model", tiny_model)
    assert result.exit_code == 2 and "site-roc.png already exists" in result.stderr and not out.exists()
    result = run("calibrate", labelled, "--out", out, "--model", tiny_model, "--force")
    assert result.exit_code == 0, result.output
    assert load_profile(out).threshold > 0


def _bad_sets(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Each unusable labelled set and the words its one-line error must contain."""
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one"
    (one / "NORMAL").mkdir(parents=True)
    Image.fromarray(synthetic_film(96)).save(one / "NORMAL" / "a.jpeg")
    films = sorted((good / "NORMAL").iterdir())[:2] + sorted((good / "PNEUMONIA").iterdir())[:2]
    csvs = {
        "labels": f"{films[0]},NORMAL\n{films[2]},pneumonia\n{films[3]},viral\n",
        "missing": f"{films[0]},NORMAL\n{films[2]},PNEUMONIA\n{tmp_path / 'gone.jpeg'},NORMAL\n",
        "duplicates": f"{films[0]},NORMAL\n{films[2]},PNEUMONIA\n{films[0]},NORMAL\n",
        "one_class_csv": f"{films[0]},NORMAL\n{films[1]},NORMAL\n",
    }
    cases = {
        "empty_folder": (empty, "has no NORMAL/ or PNEUMONIA/ sub-folder"),
        "one_class": (one, "only NORMAL films (1), no PNEUMONIA"),
        "labels": (None, "label must be NORMAL or PNEUMONIA on line 3 ('viral')"),
        "missing": (None, "1 film(s) not found: line 3"),
        "duplicates": (None, "the same film is listed twice: line 3 repeats line 1"),
        "one_class_csv": (None, "only NORMAL films (2), no PNEUMONIA"),
    }
    for name, text in csvs.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        cases[name] = (path, cases[name][1])
    return cases


@pytest.mark.parametrize("case", ["empty_folder", "one_class", "labels", "missing", "duplicates", "one_class_csv"])
def test_bad_labelled_sets_get_one_line_exit_2_and_no_profile(labelled, tiny_model, tmp_path, case):
    source, expected = _bad_sets(tmp_path, labelled)[case]
    out = tmp_path / "site.json"
    result = run("calibrate", source, "--out", out, "--model", tiny_model)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pneumoscan: error: ") and expected in lines[0]
    assert str(source) in lines[0]
    assert not out.exists() and not (tmp_path / "site-roc.png").exists()


def test_a_class_emptied_by_refusals_writes_no_profile(tmp_path, tiny_model):
    site = tmp_path / "site"
    (site / "NORMAL").mkdir(parents=True)
    (site / "PNEUMONIA").mkdir()
    Image.fromarray(synthetic_film(96)).save(site / "NORMAL" / "a.jpeg")
    (site / "PNEUMONIA" / "broken.jpeg").write_bytes(b"not an image")
    result = run("calibrate", site, "--out", tmp_path / "site.json", "--model", tiny_model)
    assert result.exit_code == 2
    assert "no PNEUMONIA film could be screened; no profile written" in result.stderr
    assert not (tmp_path / "site.json").exists()


@pytest.mark.parametrize("value", ["0.3", "1", "1.5"])
def test_sensitivity_out_of_range_is_a_usage_error(labelled, tiny_model, tmp_path, value):
    result = run("calibrate", labelled, "--out", tmp_path / "s.json", "--model", tiny_model, "--sensitivity", value)
    assert result.exit_code == 2 and not (tmp_path / "s.json").exists()

