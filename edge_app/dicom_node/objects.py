"""The result going back to the PACS: a Secondary Capture to look at, a text SR to read, with highdicom.

Both objects belong to the film's own study (its Study Instance UID, patient and study modules,
copied by highdicom from the film's header), each in its own series, so a PACS files them beside
the film and a viewer shows them with it:

- **Secondary Capture** (RGB, 8 bit): the heatmap overlay of the film with a banner burned in,
  saying first that this is a screening aid and not a diagnosis, then the result line
  (``Burned In Annotation: YES``). Only for films that were screened.
- **Basic Text SR**: the score (0-100), the label, the threshold and the model version as text
  items, the nurse's advice line, the screening-aid statement, and a reference to the film. A
  film that was not screened gets one too, saying why, so the PACS never shows silence.

Basic Text SR is the SR class every PACS and viewer renders; it has no numeric items, so the
score is text. highdicom has no class of its own for it, so the class used is highdicom's
common SR base given that SOP class (:func:`basic_text_sr_class`); its content uses only the value types Basic Text SR allows
(CONTAINER, TEXT, IMAGE).

UIDs are derived from the film's content hash and the model version, not drawn at random: a
film screened again after a crash yields the very same objects, so a PACS that receives one
twice stores it once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from edge_app.dicom import quiet_pydicom
from edge_app.dicom_node.header import OWN_MANUFACTURER
from edge_app.results import DASH, Result, advice

#: Local coding scheme for the concepts no standard code names ("99" marks a private scheme).
SCHEME = "99PNEUMOSCAN"

SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
SR_SERIES_DESCRIPTION = "pneumoscan screening aid - result (not a diagnosis)"
SC_SERIES_DESCRIPTION = "pneumoscan screening aid - heatmap (not a diagnosis)"

#: First line of every banner and of every report: what this is, before what it says.
SCREENING_AID = "SCREENING AID - NOT A DIAGNOSIS"
DISCLAIMER = (
    "Produced by pneumoscan, an automated screening aid for pediatric chest X-rays. It is not a "
    "diagnosis and not a medical device: a clinician must read the film."
)

#: Tags of the film's patient and study modules highdicom reads directly (Type 2: present,
#: possibly empty); a film without them still gets its result.
_TYPE2_KEYWORDS = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
    "StudyDate", "StudyTime", "ReferringPhysicianName",
)


@dataclass(frozen=True)
class ResultObjects:
    """The datasets for one film: the SR always, the Secondary Capture when there is a picture."""

    sr: object
    sc: object | None


def result_uid(sha256: str, model_version: str, kind: str) -> str:
    """A UID that is the same every time for this film, model and kind of object."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["pneumoscan", sha256, model_version, kind])


def _reference(film) -> object:
    """A copy of the film's header carrying every element highdicom expects to read."""
    from copy import deepcopy

    ref = deepcopy(film)
    for keyword in _TYPE2_KEYWORDS:
        if keyword not in ref:
            setattr(ref, keyword, None)
    return ref


def _concept(value: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


def build_sr(film, result: Result, sha256: str, model_version: str):
    """The Basic Text SR for ``result`` (a screened film, or one that could not be)."""
    from highdicom.sr import ContainerContentItem, ImageContentItem, TextContentItem
    from pydicom.sr.codedict import codes

    items = [TextContentItem(codes.DCM.Finding, _finding(result), relationship_type="CONTAINS")]
    if result.ok:
        items += [
            TextContentItem(_concept("SCORE", "Pneumonia screening score (0-100)"), str(result.score), "CONTAINS"),
            TextContentItem(_concept("LABEL", "Screening label"), result.label, "CONTAINS"),
            TextContentItem(
                _concept("PROB", "Probability of pneumonia"), f"{result.probability:.6f}", "CONTAINS"
            ),
            TextContentItem(_concept("THRESH", "Decision threshold"), f"{result.threshold:.6g}", "CONTAINS"),
            TextContentItem(_concept("UNCERTAIN", "Uncertain"), "YES" if result.uncertain else "NO", "CONTAINS"),
        ]
    items += [
        TextContentItem(codes.DCM.AlgorithmName, "pneumoscan", "CONTAINS"),
        TextContentItem(codes.DCM.AlgorithmVersion, model_version, "CONTAINS"),
        TextContentItem(codes.DCM.Comment, DISCLAIMER, "CONTAINS"),
        ImageContentItem(
            codes.DCM.SourceImageForImageProcessingOperation,
            str(film.SOPClassUID),
            str(film.SOPInstanceUID),
            relationship_type="CONTAINS",
        ),
    ]
    root = ContainerContentItem(codes.LN.DiagnosticImagingReport, template_id=None)
    root.ContentSequence = items
    with quiet_pydicom():
        return basic_text_sr_class()(
            evidence=[_reference(film)],
            content=root,
            series_instance_uid=result_uid(sha256, model_version, "sr-series"),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=result_uid(sha256, model_version, "sr"),
            instance_number=1,
            manufacturer=OWN_MANUFACTURER,
            is_complete=True,
            series_description=SR_SERIES_DESCRIPTION,
        )


def plain(text: str) -> str:
    """``text`` in ASCII: the film's character set (often the default, ASCII) must encode it."""
    return text.replace(DASH, "-").encode("ascii", "replace").decode("ascii")


def _finding(result: Result) -> str:
    if result.ok:
        return plain(f"{SCREENING_AID}. {advice(result)}")
    return plain(f"{SCREENING_AID}. Not screened: {result.error}")


def build_sc(film, picture: np.ndarray, result: Result, sha256: str, model_version: str):
    """The Secondary Capture: ``picture`` (RGB uint8, the heatmap overlay) under the banner."""
    from highdicom.sc import SCImage

    pixels = burn_in(picture, banner_lines(result, model_version))
    with quiet_pydicom():
        sc = SCImage.from_ref_dataset(
            ref_dataset=_reference(film),
            pixel_array=pixels,
            photometric_interpretation="RGB",
            bits_allocated=8,
            coordinate_system="PATIENT",
            patient_orientation=_orientation(film),
            series_instance_uid=result_uid(sha256, model_version, "sc-series"),
            series_number=SC_SERIES_NUMBER,
            sop_instance_uid=result_uid(sha256, model_version, "sc"),
            instance_number=1,
            manufacturer=OWN_MANUFACTURER,
            transfer_syntax_uid="1.2.840.10008.1.2.1",
        )
        sc.SeriesDescription = SC_SERIES_DESCRIPTION
        sc.BurnedInAnnotation = "YES"
        sc.ImageType = ["DERIVED", "SECONDARY"]
        sc.DerivationDescription = f"pneumoscan {model_version} heatmap overlay; {SCREENING_AID.lower()}"
        sc.ImageComments = plain(f"{SCREENING_AID}. {advice(result)}")
    return sc


def _orientation(film) -> tuple[str, str]:
    """The film's Patient Orientation (the overlay is the film, smaller), else the way a frontal
    chest film is hung: the patient's left on the viewer's right (rows run to L), head up (F)."""
    from highdicom.enum import PatientOrientationValuesBiped

    try:
        row, column = (str(value).strip().upper() for value in film.get("PatientOrientation") or ())
        PatientOrientationValuesBiped(row), PatientOrientationValuesBiped(column)
        return row, column
    except (ValueError, TypeError):
        return "L", "F"


def build(film, result: Result, sha256: str, model_version: str, picture: np.ndarray | None) -> ResultObjects:
    """Both objects for one film; ``picture`` None (not screened, or no heatmap) sends the SR only."""
    sr = build_sr(film, result, sha256, model_version)
    sc = build_sc(film, picture, result, sha256, model_version) if picture is not None and result.ok else None
    return ResultObjects(sr, sc)


# --- the banner ---------------------------------------------------------------------------------


def banner_lines(result: Result, model_version: str) -> list[str]:
    """What is burned in, top to bottom; plain ASCII so any font draws it."""
    verdict = plain(advice(result))
    return [
        SCREENING_AID,
        verdict,
        f"pneumoscan {model_version}  score {result.score}/100  {result.label}  threshold {result.threshold:.3g}",
    ]


#: The Secondary Capture is at least this wide: a small film's overlay is enlarged so the banner
#: text is legible at its natural size in any viewer. Banner text is at least MIN_FONT px high.
MIN_WIDTH = 512
MIN_FONT, MAX_FONT = 12, 18


def burn_in(picture: np.ndarray, lines: list[str]) -> np.ndarray:
    """``picture`` (enlarged to :data:`MIN_WIDTH` if narrower) under a black banner holding
    ``lines``, the first in yellow; a line too long for the width is wrapped, never cut."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.asarray(picture, dtype=np.uint8)).convert("RGB")
    if image.width < MIN_WIDTH:
        height = round(image.height * MIN_WIDTH / image.width)
        image = image.resize((MIN_WIDTH, height), Image.Resampling.BILINEAR)
    width = image.width
    room = width - 8
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    size = MAX_FONT
    font = _font(ImageFont, size)
    while size > MIN_FONT and max(probe.textlength(line, font=font) for line in lines) > room:
        size -= 1
        font = _font(ImageFont, size)
    rows = [(row, index == 0) for index, line in enumerate(lines) for row in _wrap(line, font, room, probe)]
    line_height = size + size // 3
    banner = Image.new("RGB", (width, line_height * len(rows) + 8), (0, 0, 0))
    draw = ImageDraw.Draw(banner)
    for index, (row, first) in enumerate(rows):
        draw.text((4, 4 + index * line_height), row, fill=(255, 220, 0) if first else (255, 255, 255), font=font)
    return np.concatenate([np.asarray(banner, dtype=np.uint8), np.asarray(image, dtype=np.uint8)], axis=0)


def _wrap(line: str, font, room: int, probe) -> list[str]:
    """``line`` split at spaces into rows no wider than ``room`` pixels (a single word that is
    wider stays whole: it cannot be split sensibly)."""
    rows, current = [], ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and probe.textlength(candidate, font=font) > room:
            rows.append(current)
            current = word
        else:
            current = candidate
    return [*rows, current]


def _font(image_font, size: int):
    try:
        return image_font.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return image_font.load_default()


@functools.cache
def basic_text_sr_class():
    from highdicom.sr.sop import _SR
    from pydicom.uid import BasicTextSRStorage

    class BasicTextSR(_SR):
        """A Basic Text SR document (highdicom's SR base with that SOP class)."""

        def __init__(self, **kwargs):
            super().__init__(sop_class_uid=BasicTextSRStorage, **kwargs)

    return BasicTextSR

