"""What the header decides: frontal chest films are screened, the rest refused with a reason that
never quotes free text; the fields a result records, identifiers only with ``with_ids``."""

from __future__ import annotations

import pytest

from dicom_node_helpers import PATIENT, make_film
from edge_app.dicom_node.header import NOT_FRONTAL_CHEST, film_fields, refusal
from pydicom.dataset import Dataset
from pydicom.uid import ComputedRadiographyImageStorage, DigitalXRayImageStorageForProcessing


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"view": "AP"},
        {"body_part": "THORAX"},
        {"body_part": None, "view": None},  # a CR reader that fills neither: the input gate decides
        {"sop_class": ComputedRadiographyImageStorage},
    ],
)
def test_frontal_chest_films_are_screened(changes):
    assert refusal(make_film(1, **changes)) is None


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"view": "LL"}, "lateral view (left lateral)"),
        ({"view": "RL"}, "lateral view (right lateral)"),
        ({"view": "LLD"}, "decubitus view (left lateral decubitus)"),
        ({"view": "RLO"}, "oblique view (right lateral oblique)"),
        ({"view": "XYZ"}, "not a PA or AP view (an unrecognised view position)"),
        ({"body_part": "SKULL"}, "body part examined is not the chest (SKULL)"),
        ({"body_part": "HAND", "view": "PA"}, "body part examined is not the chest (HAND)"),
        ({"sop_class": DigitalXRayImageStorageForProcessing}, "a DX image 'for processing'"),
    ],
)
def test_other_films_are_refused_with_the_reason(changes, reason):
    said = refusal(make_film(1, **changes))
    assert said.startswith(f"{NOT_FRONTAL_CHEST}: {reason}")


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_free_text_is_never_quoted():
    said = refusal(make_film(1, body_part="Doe Jane"))
    assert said.endswith("(an unrecognised value)") and "Doe" not in said


def test_the_coded_region_decides_when_body_part_is_absent():
    film = make_film(1, body_part=None)
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "12738006", "SCT", "Brain"
    film.AnatomicRegionSequence = [code]
    assert refusal(film).endswith("anatomic region is not the chest (code SCT 12738006)")
    code.CodeValue, code.CodeMeaning = "43799004", "Chest"
    assert refusal(film) is None


def test_own_result_images_coming_back_are_not_screened():
    film = make_film(1)
    film.Manufacturer = "pneumoscan"
    assert "pneumoscan result image" in refusal(film)


def test_fields_name_the_study_series_and_instance_and_identifiers_only_on_request():
    film = make_film(3)
    fields = film_fields(film, calling_ae="XRAY1")
    assert fields["study_instance_uid"] == film.StudyInstanceUID
    assert fields["series_instance_uid"] == film.SeriesInstanceUID
    assert fields["sop_instance_uid"] == film.SOPInstanceUID
    assert (fields["modality"], fields["body_part"], fields["view_position"]) == ("DX", "CHEST", "PA")
    assert fields["sop_class"] == "DX for presentation" and fields["calling_ae"] == "XRAY1"
    assert not set(PATIENT.values()) & {str(v) for v in fields.values()}
    assert "accession_number" not in fields
    with_ids = film_fields(film, with_ids=True)
    assert with_ids["patient_id"] == PATIENT["PatientID"] and with_ids["accession_number"] == "ACC00003"
