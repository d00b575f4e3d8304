"""Label schemes: which classes a data set has and how they map onto the screening and pattern heads."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.labels import (
    BINARY_KERMANY,
    KIND_FOLDERS,
    KIND_KERMANY,
    NO_PATTERN,
    LabelError,
    LabelScheme,
    kermany_pattern,
    read_label_csv,
    resolve_scheme,
    screening_and_pattern,
)


def test_kermany_pattern_comes_from_the_file_name():
    assert kermany_pattern("x/person1_bacteria_1.jpeg") == 0
    assert kermany_pattern("person1_virus_7.JPEG") == 1
    assert kermany_pattern("IM-0115-0001.jpeg") == NO_PATTERN


def test_kermany_folders_stay_the_binary_scheme_unless_asked():
    assert resolve_scheme(["PNEUMONIA", "NORMAL"]) == BINARY_KERMANY
    scheme = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)
    assert scheme.kind == KIND_KERMANY and scheme.patterns == ("bacterial", "viral")
    assert scheme.screening == ("NORMAL", "PNEUMONIA") and scheme.pattern_output == "logit"
    with pytest.raises(LabelError, match="--pattern needs"):
        resolve_scheme(["normal", "covid", "tb"], pattern=True)


def test_n_folders_give_a_screening_negative_and_patterns():
    scheme = resolve_scheme(["viral", "Normal", "bacterial"])
    assert scheme.kind == KIND_FOLDERS
    assert scheme.classes == ("Normal", "bacterial", "viral")
    assert scheme.screening == ("NORMAL", "PNEUMONIA") and scheme.patterns == ("bacterial", "viral")
    four = resolve_scheme(["healthy", "a", "b", "c"], negative="healthy")
    assert four.pattern_output == "logits" and four.pattern_units == 3
    assert four.screening == ("NORMAL", "PNEUMONIA")  # what the device's contract requires


def test_two_other_folders_are_binary_with_the_named_negative():
    scheme = resolve_scheme(["sick", "well"], negative="well")
    assert scheme.kind == "binary" and scheme.classes == ("well", "sick") and not scheme.has_pattern
    assert scheme.screening == ("NORMAL", "PNEUMONIA")


@pytest.mark.parametrize(
    "classes, options, message",
    [
        (["only"], {}, "at least two"),
        (["a", "b", "c"], {}, "--negative-class"),
        (["a", "b"], {"negative": "z"}, "not one of"),
    ],
)
def test_unusable_classes_are_refused(classes, options, message):
    with pytest.raises(LabelError, match=message):
        resolve_scheme(classes, **options)


def test_screening_and_pattern_labels():
    kermany = resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True)
    assert screening_and_pattern(kermany, "NORMAL", Path("IM-1-1.jpeg")) == (0, NO_PATTERN)
    assert screening_and_pattern(kermany, "PNEUMONIA", Path("person3_virus_9.jpeg")) == (1, 1)
    with pytest.raises(LabelError, match="bacteria or virus"):
        screening_and_pattern(kermany, "PNEUMONIA", Path("odd.jpeg"))
    folders = resolve_scheme(["normal", "b", "a"])
    assert screening_and_pattern(folders, "b", Path("x.png")) == (1, 1)
    with pytest.raises(LabelError, match="not one of"):
        screening_and_pattern(folders, "c", Path("x.png"))


def test_scheme_round_trips_and_a_run_without_one_is_binary():
    scheme = resolve_scheme(["normal", "b", "a"])
    assert LabelScheme.from_dict(scheme.to_dict()) == scheme
    assert LabelScheme.from_dict(None) == BINARY_KERMANY
    with pytest.raises(LabelError, match="kind"):
        LabelScheme.from_dict({"kind": "other"})


def test_label_csv_paths_are_relative_to_the_csv_and_every_problem_is_listed(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    good = tmp_path / "labels.csv"
    good.write_text("path,label,patient\na.png,normal,p1\n")
    rows = read_label_csv(good)
    assert rows[0].path == tmp_path / "a.png" and rows[0].label == "normal" and rows[0].patient == "p1"
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nmissing.png,normal\n,viral\n")
    with pytest.raises(LabelError) as caught:
        read_label_csv(bad)
    assert "line 2" in str(caught.value) and "line 3" in str(caught.value)
    (tmp_path / "nohead.csv").write_text("a.png,normal\n")
    with pytest.raises(LabelError, match="header"):
        read_label_csv(tmp_path / "nohead.csv")
