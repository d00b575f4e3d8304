"""Every kind of file the device accepts, behind one call that turns it into model input.

PNG/JPEG go through :func:`edge_app.preprocessing.prepare_file`, DICOM through
:mod:`edge_app.dicom`; both end in the same resize and normalisation, and both report what the
input gate and the heatmap need from the same single decode. DICOM is recognised by content as
well as by name, so files a scanner exports without an extension are found in folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edge_app.dicom import is_dicom, prepare_dicom
from edge_app.preprocessing import SUPPORTED_SUFFIXES, PreprocessSpec, prepare_file


class ModelInput(NamedTuple):
    """What one file gives the classifier: the image, and fields for the result record."""

    image: np.ndarray
    kind: str
    #: DICOM header fields from :func:`edge_app.dicom.dicom_info` (empty for PNG/JPEG).
    info: dict[str, Any]
    #: :func:`edge_app.preprocessing.colourfulness` of the decoded image (0.0 for grayscale).
    colourfulness: float = 0.0
    #: The film at its own aspect ratio, when asked for with ``display_side``.
    display: np.ndarray | None = None


def is_input_file(path: str | Path) -> bool:
    """True for files :func:`load_model_input` accepts: PNG/JPEG by name, DICOM by name or content.

    Reads at most 132 bytes, and only from files without a known image suffix.
    """
    path = Path(path)
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return path.is_file()
    return is_dicom(path) and path.is_file()


def load_model_input(
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
    if Path(path).suffix.lower() not in SUPPORTED_SUFFIXES and is_dicom(path):
        prepared, info = prepare_dicom(path, spec, with_ids=with_ids, display_side=display_side)
        kind = "dicom"
    else:
        prepared, info, kind = prepare_file(path, spec, display_side), {}, "image"
    return ModelInput(prepared.pixels, kind, info, prepared.colourfulness, prepared.display)
