"""The result objects, read back with pydicom as a PACS would: in the film's study, the score of
the result, marked as a screening aid, and the same UIDs every time for the same film and model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dicom_node_helpers import PATIENT, make_film, sr_items
from edge_app.dicom_node.objects import SCREENING_AID, build, burn_in, result_uid
from edge_app.results import Result
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.uid import BasicTextSRStorage, SecondaryCaptureImageStorage

SHA = "ab" * 32


def round_trip(ds):
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


@pytest.fixture
def screened() -> Result:
    return Result("film.dcm", 0.8712, 87, "PNEUMONIA", False, 0.3214, "1.0+abc", 12.0)


def test_sr_and_sc_belong_to_the_film_s_study_and_say_what_the_log_says(screened):
    film = make_film(5)
    picture = np.full((300, 512, 3), 90, np.uint8)
    objects = build(film, screened, SHA, "1.0+abc", picture)
    sr, sc = round_trip(objects.sr), round_trip(objects.sc)

    assert sr.SOPClassUID == BasicTextSRStorage and sc.SOPClassUID == SecondaryCaptureImageStorage
    for ds in (sr, sc):
        assert ds.StudyInstanceUID == film.StudyInstanceUID
        assert ds.SeriesInstanceUID != film.SeriesInstanceUID
        assert ds.PatientID == PATIENT["PatientID"] and ds.AccessionNumber == film.AccessionNumber
        assert "not a diagnosis" in ds.SeriesDescription
    items = sr_items(sr)
    assert items["Pneumonia screening score (0-100)"] == "87"
    assert items["Screening label"] == "PNEUMONIA"
    assert float(items["Decision threshold"]) == pytest.approx(0.3214)
    assert items["Algorithm Version"] == "1.0+abc"
    assert items["Finding"].startswith(SCREENING_AID)
    assert {item.ValueType for item in sr.ContentSequence} <= {"TEXT", "IMAGE"}  # Basic Text SR
    reference = sr.ContentSequence[-1].ReferencedSOPSequence[0]
    assert (reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID) == (film.SOPClassUID, film.SOPInstanceUID)
    assert sr.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID == film.StudyInstanceUID

    assert sc.BurnedInAnnotation == "YES" and SCREENING_AID in sc.ImageComments
    assert sc.PhotometricInterpretation == "RGB" and sc.Columns == 512 and sc.Rows > 300
    pixels = sc.pixel_array
    assert np.array_equal(pixels[-300:], picture)  # the overlay, untouched, under the banner
    assert pixels[: sc.Rows - 300].max() > 200  # text drawn in the black banner


def test_the_same_film_and_model_give_the_same_objects(screened):
    film = make_film(5)
    first = build(film, screened, SHA, "1.0+abc", None)
    again = build(film, screened, SHA, "1.0+abc", None)
    other_model = build(film, screened, SHA, "2.0", None)
    assert first.sr.SOPInstanceUID == again.sr.SOPInstanceUID == result_uid(SHA, "1.0+abc", "sr")
    assert other_model.sr.SOPInstanceUID != first.sr.SOPInstanceUID
    assert first.sc is None  # no picture, no Secondary Capture


def test_a_film_not_screened_gets_an_sr_saying_why_and_no_picture():
    film = make_film(6, view="LL")
    refused = Result("film.dcm", error="not a frontal chest radiograph by its header: lateral view (left lateral)")
    objects = build(film, refused, SHA, "1.0", np.zeros((10, 10, 3), np.uint8))
    assert objects.sc is None
    items = sr_items(round_trip(objects.sr))
    assert "Pneumonia screening score (0-100)" not in items
    assert items["Finding"].endswith("Not screened: not a frontal chest radiograph by its header: lateral view (left lateral)")


def test_a_film_without_patient_module_still_gets_its_result(screened):
    film = make_film(7)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate", "StudyTime"):
        delattr(film, keyword)
    objects = build(film, screened, SHA, "1.0", np.zeros((64, 64, 3), np.uint8))
    assert round_trip(objects.sr).StudyInstanceUID == film.StudyInstanceUID
    assert round_trip(objects.sc).StudyInstanceUID == film.StudyInstanceUID


def test_a_small_film_is_enlarged_and_long_lines_wrap_rather_than_being_cut():
    from PIL import ImageDraw, ImageFont

    picture = np.zeros((224, 224, 3), np.uint8)
    lines = ["SCREENING AID - NOT A DIAGNOSIS", "word " * 40]
    out = burn_in(picture, lines)
    assert out.shape[1] == 512 and out.shape[0] - 512 > 0  # 224x224 enlarged to 512x512
    banner = out[: out.shape[0] - 512]
    lit_rows = np.flatnonzero(banner.max(axis=(1, 2)) > 128)
    # Two lines of text would end within ~50 px; the wrapped second line takes several rows.
    assert lit_rows.max() > 60
    font = ImageFont.load_default(size=12)
    assert ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength("word " * 40, font=font) > 512
