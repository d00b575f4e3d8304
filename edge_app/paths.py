"""Finding files: turn the PATHs a user typed into the list of files to screen, in a stable order.

Nothing here decodes an image (that is :mod:`edge_app.decoding`); this module only walks folders
and names what cannot be screened before any decoder sees it.

A file is taken as given (the decoder decides whether it is an image, so a wrong extension gets a
clear "not an image" rather than being silently skipped). A folder is searched recursively for
the supported extensions in any case, and for DICOM files by content too: X-ray units and PACS
exports often name files by number or UID (``IM000012``, ``1.2.840....7.3``) without ``.dcm``.
Nothing here raises for a bad path: a missing path, an unreadable folder or a folder without
images becomes a :class:`PathItem` carrying the reason,
so one typo never stops a batch and every PATH shows up in the results.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge_app.decoding import is_decodable
from edge_app.preprocessing import ImageError, check_file, is_image_name


@dataclass(frozen=True)
class PathItem:
    """One thing to screen: ``source`` to open, ``path`` as it is reported (the same text unless
    the name is not valid UTF-8) and ``error`` if it is already known that it cannot be screened."""

    source: str
    error: str | None = None

    @property
    def path(self) -> str:
        return display_path(self.source)


def display_path(path: str | os.PathLike) -> str:
    """``path`` as text that can always be printed and encoded as UTF-8.

    File names on a USB stick need not be valid UTF-8; Python keeps the stray bytes as lone
    surrogates, which would make ``print`` or a CSV writer crash on the whole batch.
    """
    text = os.fspath(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


#: A DICOM media folder's index (PS3.10): a DICOM file, but it lists images, it is not one.
DICOMDIR = "DICOMDIR"


def walk_images(folder: str | os.PathLike) -> tuple[list[str], list[PathItem]]:
    """Supported images under ``folder`` (sorted) and errors for sub-folders that can't be read
    and for entries that are not regular files.

    The files :func:`expand_paths` takes from a folder, as paths joined onto ``folder``, without
    its de-duplication: that resolves every file's real path, which costs several times the walk
    itself, so a caller that lists a folder often (``watch``) uses this instead. A missing or
    unreadable ``folder`` is an error item, never an exception.

    Every entry is ``stat``-ed before anything opens it: a named pipe, socket or device in the
    folder becomes an error item ("not a regular file"), because opening a pipe to sniff it for
    DICOM would block the whole batch until someone writes to it.

    Hidden files and folders are skipped: a Mac writes a ``._name.jpeg`` resource fork next to
    every image it copies to a USB stick, and those are not images. Files without an image
    extension are opened to look for the DICOM preamble (132 bytes read from each).
    """
    found: list[str] = []
    errors: list[PathItem] = []

    def on_error(exc: OSError) -> None:
        errors.append(PathItem(os.fspath(exc.filename or folder), f"cannot read folder: {exc.strerror}"))

    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or name.upper() == DICOMDIR:
                continue
            path = os.path.join(root, name)
            try:
                check_file(path)
            except ImageError as exc:
                if str(exc).startswith("not a regular file"):
                    errors.append(PathItem(path, str(exc)))
                    continue
                # an empty or unreadable image still gets its result (the decoder says why)
                if is_image_name(name):
                    found.append(path)
                continue
            if is_image_name(name) or is_decodable(path):
                found.append(path)
    return sorted(found), errors


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def writes_into_inputs(
    target: str | os.PathLike, inputs: list[str | os.PathLike], *, beside_files: bool = False
) -> str | None:
    """Why writing ``target`` could change or add to something the user gave as input, or None.

    Compared by real path (symbolic links resolved, also for a target that does not exist yet)
    and, for an existing target, by file identity (a hard link to an input is that input):
    ``target`` may not be an input file, nor lie in or below an input folder (a later run over
    that folder would screen it, or an overwrite would destroy a film). ``beside_files``: nor
    in or below the folder an input *file* lies in (for heatmaps, which are PNG images).
    """
    real = os.path.realpath(target)
    try:
        identity = os.stat(target)
    except OSError:
        identity = None
    for raw in inputs:
        source = os.path.realpath(raw)
        shown = display_path(raw)
        if os.path.isdir(source):
            if _within(real, source):
                return f"is inside the input folder {shown}"
            continue
        if real == source:
            return f"is the input {shown}"
        if identity is not None:
            try:
                if os.path.samestat(identity, os.stat(source)):
                    return f"is the input {shown} (another name for the same file)"
            except OSError:
                pass
        if beside_files and _within(real, os.path.dirname(source)):
            return f"is in the folder of the input {shown}"
    return None


def expand_paths(paths: list[str | os.PathLike]) -> list[PathItem]:
    """One or more :class:`PathItem` per PATH, in the order given; folders expand in sorted order.

    A file reached twice (named twice, or also inside a named folder) is screened once, at its
    first position, so a result list never double-counts an image.
    """
    items: list[PathItem] = []
    seen: set[str] = set()

    def add(item: PathItem, real: str | None = None) -> None:
        key = real or item.source
        if key not in seen:
            seen.add(key)
            items.append(item)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, errors = walk_images(path)
            if not found and not errors:
                add(PathItem(str(path), "folder contains no JPEG, PNG or DICOM images"))
            for name in found:
                add(PathItem(name), os.path.realpath(name))
            for error in errors:
                add(error)
        elif path.exists():
            # A named pipe given by name is refused here, by ``stat``, before anything opens it.
            try:
                check_file(path)
            except ImageError as exc:
                if str(exc).startswith("not a regular file"):
                    add(PathItem(str(path), str(exc)), os.path.realpath(path))
                    continue
            add(PathItem(str(path)), os.path.realpath(path))
        elif path.is_symlink():
            add(PathItem(str(path), "broken link (its target does not exist)"))
        else:
            add(PathItem(str(path), "file not found"))
    return items


def write_text_atomically(path: str | os.PathLike, text: str, *, replace: bool, newline: str | None = None) -> None:
    """Write ``text`` to ``path`` whole: a temporary file in the same folder, fsynced, then
    renamed into place, so a crash never leaves half a file. Without ``replace`` an existing
    file wins, even one that appears while this runs (the rename is a link, which never
    replaces): raises :class:`FileExistsError` then."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
