"""``edge_app.labelled_set``: a folder per class or a CSV of path,label, and every way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app.labelled_set import LabelledSetError, read_labelled


def _films(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"film{i}.jpeg"
        Image.fromarray(synthetic_film(96, seed=seed + i)).save(path)
        paths.append(path)
    return paths


def test_folder_layout_reads_both_classes_recursively_any_case(tmp_path):
    _films(tmp_path / "normal", 3)
    _films(tmp_path / "PNEUMONIA" / "ward2", 2, seed=10)
    (tmp_path / "others").mkdir()
    labelled = read_labelled(tmp_path)
    assert labelled.counts == {"NORMAL": 3, "PNEUMONIA": 2}
    assert all(Path(f.path).is_file() for f in labelled.films)
    assert any("others" in note for note in labelled.notes)


def test_csv_reads_relative_paths_labels_any_case_and_an_optional_header(tmp_path):
    normal = _films(tmp_path / "films", 2)
    sick = _films(tmp_path / "more", 2, seed=5)
    csv = tmp_path / "reads.csv"
    csv.write_text(
        "\ufeffpath,label\n"
        f"films/{normal[0].name},normal\n{normal[1]},NORMAL\n"
        f"more/{sick[0].name},Pneumonia\n\n{sick[1]},PNEUMONIA\n"
    )
    labelled = read_labelled(csv)
    assert labelled.counts == {"NORMAL": 2, "PNEUMONIA": 2}
    assert Path(labelled.films[0].path) == normal[0]


@pytest.mark.parametrize(
    "case,expected",
    [
        ("empty_folder", "has no NORMAL/ or PNEUMONIA/"),
        ("empty_classes", "no films to calibrate on"),
        ("one_class", "only NORMAL films (2), no PNEUMONIA"),
        ("csv_one_class", "only PNEUMONIA films (2), no NORMAL"),
        ("csv_other_label", "label must be NORMAL or PNEUMONIA on line 2 ('TB')"),
        ("csv_missing", "1 film(s) not found: line 3 (gone.jpeg)"),
        ("csv_duplicate", "the same film is listed twice: line 3 repeats line 1"),
        ("csv_columns", "expected two columns path,label on line 1"),
        ("csv_empty", "no rows"),
        ("nothing", "not found"),
    ],
)
def test_every_unusable_set_is_one_line_naming_the_source(tmp_path, case, expected):
    films = _films(tmp_path / "films", 2)
    sick = _films(tmp_path / "sick", 2, seed=7)
    csv = tmp_path / "set.csv"
    if case == "empty_folder":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "empty_classes":
        source = tmp_path / "set"
        (source / "NORMAL").mkdir(parents=True)
        (source / "PNEUMONIA").mkdir()
    elif case == "one_class":
        source = tmp_path / "set"
        _films(source / "NORMAL", 2)
    else:
        source = csv
        csv.write_text({
            "csv_one_class": f"{sick[0]},PNEUMONIA\n{sick[1]},PNEUMONIA\n",
            "csv_other_label": f"{films[0]},NORMAL\n{sick[0]},TB\n",
            "csv_missing": f"{films[0]},NORMAL\n{sick[0]},PNEUMONIA\ngone.jpeg,NORMAL\n",
            "csv_duplicate": f"films/{films[0].name},NORMAL\n{sick[0]},PNEUMONIA\n{films[0]},NORMAL\n",
            "csv_columns": f"{films[0]};NORMAL\n",
            "csv_empty": "path,label\n",
            "nothing": "",
        }[case])
        if case == "nothing":
            source = tmp_path / "no-such-thing"
    with pytest.raises(LabelledSetError) as error:
        read_labelled(source)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert str(source) in message or source.name in message
