"""Expanding PATH arguments into the images to screen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_app.paths import PathItem, display_path, expand_paths


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    for name in ("b.jpeg", "a.PNG", "z/c.JpG", "z/y/d.jpg", "notes.txt", "scan.dcm", "x.jpeg.bak",
                 "._a.PNG", ".hidden/e.jpeg"):
        touch(root / name)
    return root


def rel(items: list[PathItem], root: Path) -> list[str]:
    return [Path(i.path).relative_to(root).as_posix() for i in items]


def test_folders_are_searched_recursively_in_sorted_order(tree):
    items = expand_paths([tree])
    assert rel(items, tree) == ["a.PNG", "b.jpeg", "scan.dcm", "z/c.JpG", "z/y/d.jpg"]
    assert all(i.error is None for i in items)


def test_hidden_files_and_other_extensions_are_skipped_in_folders(tree):
    names = rel(expand_paths([tree]), tree)
    assert "._a.PNG" not in names and ".hidden/e.jpeg" not in names
    assert not any(n.endswith((".txt", ".bak")) for n in names)


def test_dicom_is_found_by_name_or_preamble_but_not_the_media_index(tree):
    # Scanners name files by number or UID; the 128-byte preamble + "DICM" gives them away.
    for name in ("IM000012", "1.2.840.113619.7.3", "DICOMDIR"):
        (tree / "z" / name).write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    (tree / "z" / "IM000013").write_bytes(b"\0" * 200)  # no preamble: not an image
    names = rel(expand_paths([tree]), tree)
    assert "scan.dcm" in names and "z/IM000012" in names and "z/1.2.840.113619.7.3" in names
    assert "z/DICOMDIR" not in names and "z/IM000013" not in names


def test_named_files_are_kept_whatever_their_extension(tree):
    # The decoder then says why it is not an image, instead of the file vanishing silently.
    items = expand_paths([tree / "notes.txt"])
    assert items == [PathItem(str(tree / "notes.txt"))]


def test_order_of_arguments_is_kept_and_duplicates_dropped(tree):
    items = expand_paths([tree / "z", tree / "b.jpeg", tree, tree / "b.jpeg"])
    assert rel(items, tree) == ["z/c.JpG", "z/y/d.jpg", "b.jpeg", "a.PNG", "scan.dcm"]


def test_missing_path_becomes_an_error_item(tree):
    items = expand_paths([tree / "gone.jpeg", tree / "b.jpeg"])
    assert items[0] == PathItem(str(tree / "gone.jpeg"), "file not found")
    assert items[1].error is None


def test_empty_folder_becomes_an_error_item(tmp_path):
    (tmp_path / "empty").mkdir()
    [item] = expand_paths([tmp_path / "empty"])
    assert item.error and "contains no" in item.error and ".jpeg" not in item.error


def test_broken_link_becomes_an_error_item(tmp_path):
    link = tmp_path / "film.jpeg"
    link.symlink_to(tmp_path / "deleted.jpeg")
    [item] = expand_paths([link])
    assert "broken link" in item.error


def test_links_to_the_same_file_are_screened_once(tree):
    (tree / "alias.jpeg").symlink_to(tree / "b.jpeg")
    items = expand_paths([tree / "b.jpeg", tree / "alias.jpeg"])
    assert len(items) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder_becomes_an_error_item(tree):
    locked = tree / "z"
    locked.chmod(0)
    try:
        items = expand_paths([tree])
    finally:
        locked.chmod(0o755)
    assert any(i.error and "cannot read folder" in i.error for i in items)


def test_non_utf8_names_are_printable_but_still_open(tmp_path):
    raw = os.fsencode(tmp_path) + b"/film-\xff.jpeg"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    [item] = expand_paths([tmp_path])
    assert os.path.exists(item.source)
    item.path.encode("utf-8")  # would raise on a lone surrogate
    assert "\ufffd" in item.path and display_path(item.source) == item.path


def test_named_pipes_sockets_and_devices_are_refused_without_being_opened(tmp_path):
    import socket

    folder = tmp_path / "inbox"
    folder.mkdir()
    os.mkfifo(folder / "IM0001")  # no extension: the walk would sniff it for DICOM
    os.mkfifo(folder / "film.jpeg")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(folder / "IM0002"))
        (folder / "good.png").write_bytes(b"\x89PNG not really")
        items = expand_paths([str(folder), "/dev/zero", str(folder / "IM0001")])
    finally:
        sock.close()
    errors = {Path(i.source).name: i.error for i in items if i.error}
    assert errors == {
        "IM0001": "not a regular file (a named pipe)",
        "film.jpeg": "not a regular file (a named pipe)",
        "IM0002": "not a regular file (a socket)",
        "zero": "not a regular file (a device)",
    }
    assert [Path(i.source).name for i in items if not i.error] == ["good.png"]


def test_write_text_atomically_never_replaces_without_replace_and_leaves_no_temporary(tmp_path):
    from edge_app.paths import write_text_atomically

    target = tmp_path / "results.csv"
    target.write_text("the film's results\n")
    with pytest.raises(FileExistsError):
        write_text_atomically(target, "other\n", replace=False)
    assert target.read_text() == "the film's results\n"
    write_text_atomically(target, "new\n", replace=True)
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
