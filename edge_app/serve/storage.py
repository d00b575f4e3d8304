"""Where the server keeps what it is given: every upload under ``--data``, named by its content.

Layout of the data folder (created with owner-only permissions; it holds patients' films):

- ``films/<sha256>.<kind>``   each uploaded file, byte for byte, once however often it is sent;
  ``<kind>`` (``jpeg``, ``png``, ``dcm`` or ``bin``) comes from its first bytes, never from the
  name the browser gave, so a name can neither choose a path nor pretend to be another type
- ``views/<sha256>.film.jpeg`` the film as the page shows it (longer side at most 512 px, the
  model's intensity normalisation), and ``views/<sha256>-<model>.heatmap.jpeg`` its heatmap:
  JPEG, not PNG, because these are for the screen (a 512-px PNG of a grainy film takes ~50 ms to
  encode here and ~300 KB to send to a tablet; a JPEG at quality 88 a few ms and a fraction of that)
- ``incoming/``               uploads being received (a crash leaves at most a temporary file here)
- ``password``, ``secret_key`` see :mod:`edge_app.serve.auth`

Files are found again only through a SHA-256 the server computed itself (checked with
:func:`is_sha256`), so no path a client sends is ever opened.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from edge_app.heatmap import HeatmapError, HeatmapWriter, overlay

_SHA256 = re.compile(r"[0-9a-f]{64}")

#: What a file's first bytes say it is; anything else is stored as ``bin`` and left to the
#: decoder to refuse, with the same reason ``predict`` gives.
_SIGNATURES = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"))

_CHUNK = 1 << 20

#: JPEG quality of the pictures the page shows.
VIEW_QUALITY = 88


def is_sha256(text: str) -> bool:
    """True for 64 lower-case hex digits: the only form of name the server looks files up by."""
    return bool(_SHA256.fullmatch(text))


def sniff_kind(head: bytes, sent_as: str = "") -> str:
    """``jpeg``, ``png``, ``dcm`` or ``bin``, from a file's first 132 bytes.

    DICOM is recognised by its preamble; a file without one (older PACS exports) is taken as
    DICOM only if it was sent under a ``.dcm``/``.dicom`` name, as ``predict`` would take it.
    """
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[128:132] == b"DICM" or sent_as.lower().endswith((".dcm", ".dicom")):
        return "dcm"
    return "bin"


def _safe_model(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", version).strip("._")[:60] or "model"


@dataclass(frozen=True)
class StoredFilm:
    sha256: str
    path: Path
    size: int


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilmStore:
    """The data folder (see the module docstring); creates its sub-folders on first use."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).absolute()
        self.films = self.root / "films"
        self.views = self.root / "views"
        self.incoming = self.root / "incoming"
        for folder in (self.root, self.films, self.views, self.incoming):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def save(self, stream: BinaryIO, limit: int | None = None, sent_as: str = "") -> StoredFilm:
        """Copy ``stream`` into ``films/`` under its SHA-256 and kind, durably (fsynced).

        ``sent_as``: the name the client gave, used only by :func:`sniff_kind`.

        An identical file already stored is kept and the new copy dropped. ``limit``: raise
        :class:`UploadTooLarge` once more than that many bytes arrived (a second guard behind
        the request size cap, for bodies without a declared length).
        """
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.incoming)
        try:
            with os.fdopen(fd, "wb") as handle:
                while block := stream.read(_CHUNK):
                    size += len(block)
                    if limit is not None and size > limit:
                        raise UploadTooLarge(limit)
                    if len(head) < 132:
                        head += block[: 132 - len(head)]
                    digest.update(block)
                    handle.write(block)
                handle.flush()
                os.fsync(handle.fileno())
            sha256 = digest.hexdigest()
            target = self.film_path(sha256) or self.films / f"{sha256}.{sniff_kind(head, sent_as)}"
            if target.exists():  # the same content, kept from an earlier upload
                os.unlink(tmp)
            else:
                os.replace(tmp, target)
                _fsync_dir(self.films)
            return StoredFilm(sha256, target, size)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def film_path(self, sha256: str) -> Path | None:
        """The stored upload with this content, if there is one."""
        if not is_sha256(sha256):
            return None
        found = sorted(self.films.glob(f"{sha256}.*"))
        return found[0] if found else None

    def view_path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a SHA-256")
        return self.views / f"{sha256}.film.jpeg"

    def heatmap_path(self, sha256: str, model_version: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a SHA-256")
        return self.views / f"{sha256}-{_safe_model(model_version)}.heatmap.jpeg"

    def inside(self, path: str | os.PathLike) -> bool:
        """True if ``path`` (e.g. a heatmap path read from the audit log) lies in ``views/``."""
        real = Path(os.path.realpath(path))
        return Path(os.path.realpath(self.views)) in real.parents


class UploadTooLarge(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"upload larger than the limit of {limit / 1e6:g} MB")
        self.limit = limit


def _write_view(image: Image.Image, target: Path) -> None:
    """Replace ``target`` whole (temporary file, then rename): these pictures are derived, ours."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=VIEW_QUALITY)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, target)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise HeatmapError(f"cannot write {target}: {exc.strerror or exc}") from None


class ViewWriter(HeatmapWriter):
    """The screener's heatmap writer for the server: it is handed the film as displayed, so it
    keeps that too (the page's plain view) from the same single decode, under the names
    :class:`FilmStore` gives; the audit log records the heatmap's path as for ``watch``."""

    def __init__(self, store: FilmStore, model_version: str):
        super().__init__(store.views)
        self.store = store
        self.model_version = model_version

    def write(self, source, film: np.ndarray, local_map: np.ndarray, threshold: float | None = None) -> Path:
        sha256 = Path(source).name.split(".", 1)[0]
        _write_view(Image.fromarray(np.asarray(film, dtype=np.uint8), mode="L"), self.store.view_path(sha256))
        target = self.store.heatmap_path(sha256, self.model_version)
        _write_view(overlay(film, local_map, threshold), target)
        return target
