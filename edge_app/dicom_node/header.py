"""What a received film's header says: the fields a result records, and whether to screen it at all.

The model was trained and validated on frontal (PA/AP) chest films ready for display. An X-ray
unit sends the node everything it makes, so the header is checked first, and what it says is
something else is recorded as refused with the reason, not scored:

- the body part (``BodyPartExamined``, else the coded ``AnatomicRegionSequence``) is not the chest;
- the view (``ViewPosition``) is lateral, decubitus or oblique;
- the image is a DX "for processing" (raw detector data the unit has not yet processed for
  display: it looks nothing like the films the model learned from);
- it is one of pneumoscan's own result images coming back.

A header that does not say (no body part, no view) is screened: many CR readers leave these
empty, and the input gate (:mod:`edge_app.gate`) still refuses images that do not look like a
chest film. Reasons never quote free text from the header: a value is named only when it is one
of the standard's defined terms or a code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_app.dicom import dicom_info, quiet_pydicom

#: Values of Body Part Examined taken to mean the chest. CHEST is the standard's defined term;
#: the others are what some units write instead (THORAX on several European consoles).
CHEST_BODY_PARTS = {"CHEST", "THORAX", "TORAX", "LUNG", "LUNGS"}

#: Other defined terms of PS3.16 CID 4031 a clinic's unit commonly sends (named in the reason).
KNOWN_BODY_PARTS = {
    "ABDOMEN", "ANKLE", "ARM", "BREAST", "CHESTABDOMEN", "CLAVICLE", "CSPINE", "ELBOW",
    "EXTREMITY", "FACE", "FEMUR", "FOOT", "FOREARM", "HAND", "HEAD", "HEART", "HIP", "HUMERUS",
    "JAW", "KNEE", "LEG", "LSPINE", "NECK", "PELVIS", "RIB", "SHOULDER", "SINUS", "SKULL",
    "SPINE", "TSPINE", "WHOLEBODY", "WRIST",
}

#: Codes of the chest in Anatomic Region Sequence: SNOMED CT and the retired SNOMED-RT ones.
CHEST_REGION_CODES = {("SCT", "43799004"), ("SCT", "51185008"), ("SRT", "T-D3000"), ("SRT", "T-D3300")}

FRONTAL_VIEWS = {"PA", "AP"}
#: ViewPosition defined terms for CR and DX (PS3.3 C.8.11.5.1.1) that are not a frontal film.
OTHER_VIEWS = {
    "LL": "lateral view (left lateral)",
    "RL": "lateral view (right lateral)",
    "LLD": "decubitus view (left lateral decubitus)",
    "RLD": "decubitus view (right lateral decubitus)",
    "LLO": "oblique view (left lateral oblique)",
    "RLO": "oblique view (right lateral oblique)",
    "LATERAL": "lateral view",
    "LAT": "lateral view",
}

#: Manufacturer written into the Secondary Capture images the node sends out.
OWN_MANUFACTURER = "pneumoscan"

#: SOP classes the node stores, by UID, with the short name a result records.
SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX for presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX for processing",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture",
}
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"

#: Prefix of every refusal made here (the input gate's own start "not a chest X-ray").
NOT_FRONTAL_CHEST = "not a frontal chest radiograph by its header"


def read_header(path: str | Path):
    """The film's header (everything but the pixels); raises whatever pydicom raises."""
    import pydicom

    with quiet_pydicom():
        return pydicom.dcmread(path, stop_before_pixels=True)


def _text(ds, keyword: str) -> str:
    try:
        return " ".join(str(ds.get(keyword) or "").split()).upper()
    except Exception:  # noqa: BLE001 - an unparsable value counts as absent
        return ""


def film_fields(ds, *, with_ids: bool = False, calling_ae: str | None = None) -> dict[str, Any]:
    """What a result records about the film: :func:`edge_app.dicom.dicom_info` (acquisition
    fields; patient name, ID, birth date only ``with_ids``), the study, series and instance
    UIDs a PACS finds the film by, the SOP class, and the AE title that sent it."""
    with quiet_pydicom():
        fields = dicom_info(ds, with_ids=with_ids)
        sop_class = str(ds.get("SOPClassUID", "") or "")
        fields.update(
            sop_class=SOP_CLASSES.get(sop_class, sop_class or None),
            study_instance_uid=_uid(ds, "StudyInstanceUID"),
            series_instance_uid=_uid(ds, "SeriesInstanceUID"),
            sop_instance_uid=_uid(ds, "SOPInstanceUID"),
            calling_ae=calling_ae,
        )
        if with_ids:
            fields["accession_number"] = _text(ds, "AccessionNumber") or None
    return fields


def _uid(ds, keyword: str) -> str | None:
    try:
        value = str(ds.get(keyword) or "").strip()
    except Exception:  # noqa: BLE001
        return None
    return value or None


def refusal(ds) -> str | None:
    """Why the header says this is not a film to screen, or ``None`` to screen it."""
    with quiet_pydicom():
        reason = _why_not(ds)
    return None if reason is None else f"{NOT_FRONTAL_CHEST}: {reason}"


def _why_not(ds) -> str | None:
    if _text(ds, "Manufacturer") == OWN_MANUFACTURER.upper():
        return "it is a pneumoscan result image, not a film"
    if str(ds.get("SOPClassUID", "")) == DX_FOR_PROCESSING or _text(ds, "PresentationIntentType") == "FOR PROCESSING":
        return "a DX image 'for processing' (raw detector data); send the 'for presentation' image"
    body_part = _text(ds, "BodyPartExamined")
    if body_part:
        if body_part not in CHEST_BODY_PARTS:
            named = body_part if body_part in KNOWN_BODY_PARTS else "an unrecognised value"
            return f"body part examined is not the chest ({named})"
    else:
        region = _region_code(ds)
        if region is not None and region not in CHEST_REGION_CODES:
            return f"anatomic region is not the chest (code {region[0]} {region[1]})"
    view = _text(ds, "ViewPosition")
    if view and view not in FRONTAL_VIEWS:
        return OTHER_VIEWS.get(view, "not a PA or AP view (an unrecognised view position)")
    return None


def _region_code(ds) -> tuple[str, str] | None:
    try:
        items = ds.get("AnatomicRegionSequence") or []
        if not items:
            return None
        item = items[0]
        scheme = str(item.get("CodingSchemeDesignator", "")).strip()
        value = str(item.get("CodeValue", "") or item.get("LongCodeValue", "")).strip()
    except Exception:  # noqa: BLE001
        return None
    if not scheme or not value or not value.replace("-", "").isalnum():
        return None
    return scheme[:16], value[:16]
