"""The film store: content-derived names, whole files only, idempotent for a film sent twice."""

from __future__ import annotations

import hashlib

import pytest

from edge_app.dicom_node.storage import FilmStore

HEADER = b"\0" * 128 + b"DICM" + b"meta"


def test_a_film_is_stored_under_the_hash_of_its_dataset(tmp_path):
    store = FilmStore(tmp_path / "data")
    film, new = store.store(HEADER, b"dataset one")
    assert new
    assert film.sha256 == hashlib.sha256(b"dataset one").hexdigest()
    assert film.path == tmp_path / "data" / "films" / film.sha256[:2] / f"{film.sha256}.dcm"
    assert film.path.read_bytes() == HEADER + b"dataset one"
    assert film.size == len(HEADER) + len(b"dataset one")
    assert not list(store.tmp.iterdir())


def test_the_same_dataset_from_another_sender_is_the_same_film(tmp_path):
    store = FilmStore(tmp_path)
    first, _ = store.store(HEADER + b"from XRAY1", b"dataset")
    again, new = store.store(HEADER + b"from PACS", b"dataset")
    assert not new and again.path == first.path
    assert first.path.read_bytes() == HEADER + b"from XRAY1" + b"dataset"  # the first copy stays
    assert [f.sha256 for f in store.all()] == [first.sha256]


def test_all_lists_films_oldest_first_and_a_crashed_write_is_cleaned_at_start(tmp_path):
    store = FilmStore(tmp_path)
    names = [store.store(HEADER, f"film {i}".encode())[0].sha256 for i in range(5)]
    assert [f.sha256 for f in store.all()] == names
    (store.tmp / "abc.dcm.123.part").write_bytes(b"half a film")
    FilmStore(tmp_path)
    assert not list(store.tmp.iterdir())
    assert [f.sha256 for f in FilmStore(tmp_path).all()] == names


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    """A disk that fills up mid-write (simulated at the fsync): no film, no temporary file."""
    import os

    store = FilmStore(tmp_path)

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        store.store(HEADER, b"dataset")
    monkeypatch.undo()
    assert not list(store.films.glob("??/*.dcm"))
    assert not list(store.tmp.iterdir())
