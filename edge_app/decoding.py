"""Decoding one file into model input: the only place that decides how a file is read.

PNG/JPEG go through :func:`edge_app.preprocessing.prepare_file`, DICOM through
:func:`edge_app.dicom.prepare_dicom`; both end in the same resize and normalisation and return the
same :class:`~edge_app.preprocessing.ModelInput`. DICOM is recognised by content as well as by
name, so files a scanner exports without an extension are decoded too.

Finding the files to decode (folders, missing paths, de-duplication) is :mod:`edge_app.paths`.
"""

from __future__ import annotations

from pathlib import Path

from edge_app.dicom import is_dicom, prepare_dicom
from edge_app.preprocessing import ModelInput, PreprocessSpec, is_image_name, prepare_file


def is_decodable(path: str | Path) -> bool:
    """True for files :func:`decode_file` accepts: PNG/JPEG by name, DICOM by name or content.

    Reads at most 132 bytes, and only from files without a known image suffix.
    """
    path = Path(path)
    if is_image_name(path):
        return path.is_file()
    return is_dicom(path) and path.is_file()  # is_dicom opens only regular files


def decode_file(
    path: str | Path,
    spec: PreprocessSpec,
    *,
    with_ids: bool = False,
    display_side: int | None = None,
) -> ModelInput:
    """Model input for any accepted file; raises ``ImageError`` with a one-line reason.

    ``with_ids`` adds the patient's name, ID and birth date to a DICOM file's ``info``; leave it
    off unless the user asked for identifiers (``--with-ids``). ``display_side`` also returns the
    film at its own aspect ratio, longer side at most that many pixels (for a heatmap overlay).
    """
    # A known image suffix goes straight to Pillow: sniffing it for a DICOM preamble would open
    # every JPEG twice on the inference path.
    if not is_image_name(path) and is_dicom(path):
        return prepare_dicom(path, spec, with_ids=with_ids, display_side=display_side)
    return prepare_file(path, spec, display_side)
