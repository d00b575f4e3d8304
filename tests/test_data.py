"""Patient parsing, duplicates, the patient-wise split and folder discovery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from train.data import (
    DataError,
    Sample,
    drop_duplicates,
    find_class_dirs,
    fingerprint,
    label_of,
    limit_per_class,
    list_images,
    patient_of,
    scan,
    split_by_patient,
    split_samples,
)


@pytest.mark.parametrize(
    "name, patient",
    [
        ("person1_bacteria_1.jpeg", "person1"),
        ("person1_virus_7.jpeg", "person1"),
        ("PERSON22_VIRUS_3.JPEG", "person22"),
        ("IM-0115-0001.jpeg", "im-0115"),
        ("IM-0115-0002.jpeg", "im-0115"),
        ("NORMAL2-IM-0115-0001.jpeg", "normal2-im-0115"),
        ("scan_17.png", "file:scan_17.png"),
    ],
)
def test_patient_of_parses_kermany_names(name, patient):
    assert patient_of(name) == patient


def _samples(specs):
    return [Sample(path=f"/x/{p}_{i}.jpeg", label=label, patient=p, sha256=f"{p}{i}") for p, label, i in specs]


def test_split_keeps_each_patient_on_one_side_and_is_stratified():
    specs = [(f"n{k}", 0, i) for k in range(40) for i in range(k % 3 + 1)]
    specs += [(f"p{k}", 1, i) for k in range(100) for i in range(k % 4 + 1)]
    samples = _samples(specs)
    train, val = split_by_patient(samples, 0.2, seed=1)
    assert {s.patient for s in train}.isdisjoint({s.patient for s in val})
    assert len(train) + len(val) == len(samples)
    for label in (0, 1):
        total = sum(s.label == label for s in samples)
        share = sum(s.label == label for s in val) / total
        assert 0.2 <= share < 0.3


def test_split_is_deterministic_for_a_seed_and_varies_across_seeds():
    samples = _samples([(f"p{k}", k % 2, 0) for k in range(200)])
    first = split_by_patient(samples, 0.15, seed=3)[1]
    again = split_by_patient(samples, 0.15, seed=3)[1]
    other = split_by_patient(samples, 0.15, seed=4)[1]
    assert first == again
    assert first != other


def test_split_refuses_a_patient_in_both_classes():
    samples = _samples([("p1", 0, 0), ("p1", 1, 1), ("p2", 0, 0), ("p3", 1, 0)])
    with pytest.raises(DataError, match="both classes"):
        split_by_patient(samples, 0.5, seed=0)


def test_drop_duplicates_keeps_first_and_refuses_conflicting_labels():
    a = Sample("/a.jpeg", 0, "p", "h1")
    b = Sample("/b.jpeg", 0, "p", "h1")
    c = Sample("/c.jpeg", 0, "q", "h2")
    kept, dropped = drop_duplicates([a, b, c])
    assert kept == [a, c] and dropped == [b]
    with pytest.raises(DataError, match="labelled differently"):
        drop_duplicates([a, Sample("/d.jpeg", 1, "r", "h1")])


def test_scan_finds_both_layouts_and_duplicates_never_cross_the_split(tiny_dataset):
    normal = tiny_dataset / "train" / "NORMAL"
    first = list_images(normal)[0]
    shutil.copy(first, normal / "IM-0000-9999.JPEG")  # an identical copy, upper-case suffix
    samples = scan(tiny_dataset)
    assert len(samples) == 25
    kept, dropped = drop_duplicates(samples)
    assert len(dropped) == 1
    # pointing straight at the folder holding NORMAL/ and PNEUMONIA/ works too
    assert len(scan(tiny_dataset / "train", split="nonexistent")) == 25
    train, val = split_by_patient(kept, 0.3, seed=0)
    assert {s.sha256 for s in train}.isdisjoint({s.sha256 for s in val})


def test_fingerprint_changes_when_a_label_or_file_changes(tiny_dataset):
    samples = scan(tiny_dataset)
    before = fingerprint(samples, tiny_dataset)
    assert fingerprint(samples, tiny_dataset) == before
    flipped = [Sample(s.path, 1 - s.label, s.patient, s.sha256) if i == 0 else s for i, s in enumerate(samples)]
    assert fingerprint(flipped, tiny_dataset) != before


def test_a_data_set_of_links_and_a_csv_pointing_outside_its_folder_are_fingerprinted(tiny_dataset, tmp_path):
    # A folder of symbolic links to a shared copy of the films (how a second label set over the
    # same films is laid out) once failed: the links were followed before the relative path.
    linked = tmp_path / "linked"
    for s in scan(tiny_dataset):
        link = linked / Path(s.path).relative_to(tiny_dataset)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(s.path).resolve())
    direct, via_links = scan(tiny_dataset), scan(linked)
    assert fingerprint(via_links, linked) == fingerprint(direct, tiny_dataset)
    csv_path = tmp_path / "elsewhere" / "labels.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("path,label\n" + "".join(f"{s.path.resolve()},{s.path.parent.name}\n" for s in direct))
    outside = scan(csv_path)
    assert fingerprint(outside, csv_path) == fingerprint(outside, csv_path)
    assert fingerprint(outside, csv_path) != fingerprint(direct, tiny_dataset)  # absolute names


def test_missing_folder_and_empty_class_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        find_class_dirs(tmp_path / "nope")
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(DataError, match="neither"):
        find_class_dirs(tmp_path)
    (tmp_path / "train" / "PNEUMONIA").mkdir()
    with pytest.raises(DataError, match="holds no"):
        scan(tmp_path)


def test_real_dataset_split_has_no_shared_patients(shared_data):
    kept, dropped = drop_duplicates(scan(shared_data))
    assert len(kept) + len(dropped) == 5216
    assert len(dropped) == 26  # 24 groups of identical files, 26 redundant copies (data README)
    train, val = split_by_patient(kept, 0.15, seed=42)
    assert {s.patient for s in train}.isdisjoint({s.patient for s in val})


def test_earliest_split_takes_the_lowest_numbered_patients_of_each_series():
    specs = [(f"im-{k:04d}", 0, 0) for k in range(100, 140)]
    specs += [(f"normal2-im-{k:04d}", 0, 0) for k in range(400, 440)]
    specs += [(f"person{k}", 1, 0) for k in range(1, 81)]
    train, val = split_by_patient(_samples(specs), 0.25, seed=0, order="earliest")
    assert {s.patient for s in val} == (
        {f"im-{k:04d}" for k in range(100, 110)}
        | {f"normal2-im-{k:04d}" for k in range(400, 410)}
        | {f"person{k}" for k in range(1, 21)}
    )
    assert {s.patient for s in train}.isdisjoint({s.patient for s in val})
    with pytest.raises(DataError, match="split order"):
        split_by_patient(_samples(specs), 0.25, seed=0, order="sideways")


def test_limit_per_class_keeps_the_first_files_of_each_class(tmp_path):
    from conftest import write_dataset

    samples = scan(write_dataset(tmp_path / "d", per_class=6), "train")
    kept = limit_per_class(samples, 2)
    assert [s.path for s in kept] == [s.path for s in samples if s.label == 0][:2] + [s.path for s in samples if s.label == 1][:2]
    assert limit_per_class(samples, 0) == samples
    with pytest.raises(DataError, match="--limit-per-class"):
        limit_per_class(samples, -1)


def test_any_class_folders_and_a_csv_are_data_sets(tmp_path):
    from conftest import write_class_folders
    from train.data import find_classes
    from train.labels import resolve_scheme

    root = write_class_folders(tmp_path / "set", {"normal": (0.0, 0.7), "bacterial": (1.0, 0.7), "viral": (1.0, 0.3)}, per_class=3)
    (root / "train").mkdir()  # an empty split folder is neither a class nor the data
    assert find_classes(root, "nope") == ["bacterial", "normal", "viral"]
    samples = scan(root, "nope")
    assert sorted((s.label, s.pattern) for s in samples) == [(0, -1)] * 3 + [(1, 0)] * 3 + [(1, 1)] * 3
    assert all(s.patient.startswith("file:") for s in samples)  # no known naming: each file alone
    csv_path = tmp_path / "labels.csv"
    lines = ["path,label,patient"] + [f"set/{s.path.parent.name}/{s.path.name},{s.path.parent.name},child{i % 2}" for i, s in enumerate(samples)]
    csv_path.write_text("\n".join(lines) + "\n")
    from_csv = scan(csv_path)
    assert sorted((s.label, s.pattern) for s in from_csv) == sorted((s.label, s.pattern) for s in samples)
    assert {s.patient for s in from_csv} == {"csv:child0", "csv:child1"}
    assert fingerprint(from_csv, csv_path)  # CSV paths are hashed relative to its folder
    assert resolve_scheme(find_classes(csv_path)).patterns == ("bacterial", "viral")


def test_kermany_pattern_scan_keeps_the_screening_split(tmp_path):
    from conftest import write_dataset
    from train.labels import resolve_scheme

    root = write_dataset(tmp_path / "k", per_class=12, viral=True)
    plain = scan(root)
    patterned = scan(root, "train", resolve_scheme(["NORMAL", "PNEUMONIA"], pattern=True))
    assert [s.label for s in plain] == [s.label for s in patterned]
    assert {s.pattern for s in patterned if s.label == 1} == {0, 1}
    assert {s.pattern for s in patterned if s.label == 0} == {-1}
    # the same seed splits the same patients: screening figures stay comparable with a binary run
    a, b = split_by_patient(plain, 0.3, seed=1), split_by_patient(patterned, 0.3, seed=1)
    assert [s.path for s in a[1]] == [s.path for s in b[1]]


def test_label_comes_from_the_class_folder():
    assert label_of("/x/train/PNEUMONIA/person1_virus_1.jpeg") == 1
    assert label_of("/x/train/NORMAL/sub/IM-0001-0001.jpeg") == 0
    with pytest.raises(DataError, match="NORMAL or PNEUMONIA"):
        label_of("/x/train/OTHER/a.jpeg")


def test_split_samples_read_recorded_labels_and_fall_back_to_the_folders():
    paths = ["/x/train/PNEUMONIA/person1_virus_1.jpeg", "/x/train/PNEUMONIA/person2_bacteria_3.jpeg"]
    # A CSV run records its own labels (here viral = 1, bacterial = 0): the folder must not win.
    recorded = split_samples({"validation": paths, "labels": {"validation": [1, 0]}}, "validation")
    assert [s.label for s in recorded] == [1, 0]
    assert [s.patient for s in recorded] == ["person1", "person2"]
    older = split_samples({"validation": paths}, "validation")  # before labels were recorded
    assert [s.label for s in older] == [1, 1]
