"""edge_app.serve.storage: uploads kept by content, their kind from their bytes, nothing by path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_app.serve.storage import FilmStore, UploadTooLarge, ViewWriter, is_sha256, sniff_kind
from serve_helpers import film_jpeg, film_png


def test_uploads_are_stored_once_under_their_hash_and_kind(tmp_path: Path) -> None:
    store = FilmStore(tmp_path / "data")
    content = film_jpeg(seed=1)
    first = store.save(io.BytesIO(content), sent_as="../../etc/passwd.png")
    again = store.save(io.BytesIO(content), sent_as="other.dcm")
    assert first == again
    assert first.path == store.films / f"{first.sha256}.jpeg" and first.path.read_bytes() == content
    assert list(store.films.iterdir()) == [first.path]
    assert list(store.incoming.iterdir()) == []
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert store.film_path(first.sha256) == first.path
    assert store.film_path("../" + first.sha256) is None


def test_kind_comes_from_the_bytes() -> None:
    assert sniff_kind(film_png()[:132]) == "png"
    assert sniff_kind(film_jpeg()[:132], "x.png") == "jpeg"
    assert sniff_kind(b"\0" * 128 + b"DICM") == "dcm"
    assert sniff_kind(b"\0" * 132, "IM0001.DCM") == "dcm"  # a DICOM file without its preamble
    assert sniff_kind(b"hello", "notes.jpeg") == "bin"


def test_too_large_upload_leaves_nothing(tmp_path: Path) -> None:
    store = FilmStore(tmp_path)
    with pytest.raises(UploadTooLarge, match="limit of 0.001 MB"):
        store.save(io.BytesIO(b"x" * 5000), limit=1000)
    assert list(store.films.iterdir()) == [] and list(store.incoming.iterdir()) == []


def test_only_hashes_name_files() -> None:
    assert is_sha256("a" * 64)
    for text in ("A" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "a" * 63 + "/"):
        assert not is_sha256(text)


def test_view_writer_keeps_the_film_and_its_heatmap(tmp_path: Path) -> None:
    store = FilmStore(tmp_path)
    sha = "b" * 64
    film = np.tile(np.arange(200, dtype=np.uint8), (100, 1))
    written = ViewWriter(store, "v1/x").write(store.films / f"{sha}.jpeg", film, np.ones((2, 2)), 0.5)
    assert written == store.heatmap_path(sha, "v1/x") and store.inside(written)
    assert Image.open(store.view_path(sha)).size == (200, 100)
    assert Image.open(written).mode == "RGB" and Image.open(written).format == "JPEG"
    assert not store.inside(tmp_path / "films" / "x")
