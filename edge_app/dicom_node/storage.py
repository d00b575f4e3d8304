"""Received films on disk: named by their content, and on the disk before the sender hears "stored".

A C-STORE success status tells the X-ray unit it may forget the film (many units delete their
copy once the PACS or the node has it), so the bytes must survive a power cut by then. Each film
is written to ``DATA/tmp/`` under a unique name, fsynced, renamed to
``DATA/films/ab/abcdef....dcm`` (the SHA-256 of the dataset, sharded by its first two hex digits
so no folder grows past a few thousand entries), and the folder holding the new name is fsynced;
only then does :meth:`FilmStore.store` return. A crash before the rename leaves only a file in
``tmp/``, which was never acknowledged and is removed at the next start.

The hash is of the dataset exactly as received, not of the whole file: the file's meta header
also names the AE title that sent it (Source Application Entity Title), and the same film sent by
a second unit, or again by a PACS, is still the same film. It is one file, then, and the same
SHA-256 is what the audit log keys results by, so a stored film and its row are found from each
other. Files in ``films/`` are never changed or deleted by the node.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

FILMS = "films"
TMP = "tmp"
SUFFIX = ".dcm"


@dataclass(frozen=True)
class StoredFilm:
    """One film in the store; ``sha256`` is the hash of its dataset (the file after its meta header)."""

    path: Path
    sha256: str
    size: int


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new name in ``folder`` durable (a file's fsync does not cover it)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(target: Path, parts: Sequence[bytes], tmp_folder: Path) -> None:
    """Write ``parts`` to ``target`` whole or not at all, fsynced (file and folder) on return.

    Goes through a unique temporary name in ``tmp_folder`` (same file system) and
    :func:`os.replace`, so readers never see half a file.
    """
    tmp = tmp_folder / f"{target.name}.{secrets.token_hex(6)}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in parts:
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


class FilmStore:
    """The ``films/`` and ``tmp/`` folders under ``root`` (created if missing)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.films = self.root / FILMS
        self.tmp = self.root / TMP
        for folder in (self.root, self.films, self.tmp):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_folder(folder.parent)
        for leftover in self.tmp.glob("*.part"):  # a write a crash interrupted: never acknowledged
            leftover.unlink(missing_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.films / sha256[:2] / f"{sha256}{SUFFIX}"

    def store(self, header: bytes, dataset: bytes) -> tuple[StoredFilm, bool]:
        """Store the file ``header + dataset`` (preamble and meta header, then the dataset as
        received) under the dataset's hash; ``(film, new)``, ``new`` False if it was there.

        Raises ``OSError`` (disk full, read-only, ...) with nothing stored.
        """
        sha256 = hashlib.sha256(dataset).hexdigest()
        target = self.path_for(sha256)
        if target.exists():
            return StoredFilm(target, sha256, target.stat().st_size), False  # the same film again
        parts = (header, dataset)
        size = len(header) + len(dataset)
        shard = target.parent
        if not shard.is_dir():
            shard.mkdir(exist_ok=True)
            fsync_folder(self.films)
        write_durably(target, parts, self.tmp)
        return StoredFilm(target, sha256, size), True

    def all(self) -> Iterator[StoredFilm]:
        """Every stored film, oldest first (the order they were received)."""
        found = []
        for path in self.films.glob(f"??/*{SUFFIX}"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append((st.st_mtime_ns, path, st.st_size))
        for _, path, size in sorted(found):
            yield StoredFilm(path, path.stem, size)
