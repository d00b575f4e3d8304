"""DICOM input: every pixel encoding a clinic's X-ray unit may send gives the model the same input
as the equivalent PNG, and every file we cannot use is refused with a one-line, patient-free reason.

The DICOM files are built here with pydicom from the synthetic film of conftest.py.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app.dicom import (
    INSTALL_HINT,
    dicom_info,
    has_dicom_preamble,
    is_dicom,
    prepare_dicom,
)
from edge_app import dicom
from edge_app.preprocessing import ImageError, PreprocessSpec, prepare_file
from edge_app.decoding import decode_file, is_decodable

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.pixels import get_decoder, get_encoder  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000MC,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

MODEL = Path(__file__).parent / "data" / "tiny-int8.tflite"
SPEC = PreprocessSpec(image_size=64, normalization="percentile")
SPEC_NONE = PreprocessSpec(image_size=64, normalization="none")
SIZE = 128

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "PID-0042", "PatientBirthDate": "20190304"}

# The window used by the VOI cases: film levels 60..220 stretched to the full output range.
WIN_LO, WIN_HI = 60, 220


def make_dataset(pixels: np.ndarray, bits_stored: int, photometric: str = "MONOCHROME2", **elements) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    ds.set_pixel_data(pixels, photometric, bits_stored)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def save_png(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def windowed(film: np.ndarray) -> np.ndarray:
    """The film as a viewer shows it through the test window, rounded to 8 bits."""
    return np.clip(np.rint((film.astype(np.float64) - WIN_LO) * 255 / (WIN_HI - WIN_LO)), 0, 255)


def voi_lut_item(stored_per_level: int) -> Dataset:
    """A 4096-entry, 8-bit VOI LUT equal to the test window (exercises > 256 entries)."""
    x = np.arange(4096) / stored_per_level
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 8])
    item.add_new(0x00283006, "US", [int(v) for v in windowed(x)])
    return item


def case(name: str, film: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """A DICOM dataset of ``film`` encoded one way, and the 8-bit image it must look like."""
    f16 = film.astype(np.uint16)
    if name == "mono2-8bit":
        return make_dataset(film, 8), film
    if name == "mono2-12bit":
        return make_dataset(f16 * 16, 12), film
    if name == "mono2-16bit":
        return make_dataset(f16 * 257, 16), film
    if name == "mono1-8bit":
        return make_dataset(255 - film, 8, "MONOCHROME1"), film
    if name == "mono1-12bit":
        return make_dataset(4095 - f16 * 16, 12, "MONOCHROME1"), film
    if name == "signed-12bit":
        return make_dataset((f16.astype(np.int16) * 16 - 2048), 12), film
    if name == "rescale":
        # Output = 2 * stored - 100 = 16 * film: the film, in the units the modality LUT defines.
        return make_dataset(f16 * 8 + 50, 12, RescaleSlope=2, RescaleIntercept=-100, RescaleType="US"), film
    if name == "voi-window":
        # LINEAR (the default function): centre - 0.5 and width - 1 give exactly 960..3520.
        ds = make_dataset(f16 * 16, 12, WindowCenter=2240.5, WindowWidth=2561)
        return ds, windowed(film)
    if name == "voi-window-mono1":
        ds = make_dataset(4095 - f16 * 16, 12, "MONOCHROME1", WindowCenter=4095 - 2240.5, WindowWidth=2561)
        return ds, windowed(film)
    if name == "voi-lut":
        # A VOI LUT and a different window: the LUT wins, as in pydicom and most viewers.
        ds = make_dataset(f16 * 16, 12, WindowCenter=2048, WindowWidth=4096)
        ds.VOILUTSequence = Sequence([voi_lut_item(16)])
        return ds, windowed(film)
    if name == "rgb":
        return make_dataset(np.stack([film] * 3, axis=-1), 8, "RGB"), film
    raise KeyError(name)


CASES = [
    "mono2-8bit", "mono2-12bit", "mono2-16bit", "mono1-8bit", "mono1-12bit", "signed-12bit",
    "rescale", "voi-window", "voi-window-mono1", "voi-lut", "rgb",
]
#: Cases whose stored range equals the PNG's, so even un-normalised input must match.
CASES_FULL_RANGE = ["mono2-8bit", "mono2-12bit", "mono2-16bit", "mono1-8bit", "mono1-12bit",
                    "signed-12bit", "voi-window", "voi-lut", "rgb"]


def assert_same_input(a: np.ndarray, b: np.ndarray, tol: int = 1) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= tol, f"max difference {diff.max()} levels, mean {diff.mean():.3f}"


@pytest.fixture
def film() -> np.ndarray:
    return synthetic_film(SIZE, seed=3, opacity=0.6)


# --- recognising DICOM -------------------------------------------------------------------------


def test_is_dicom_by_suffix_and_by_preamble(tmp_path, film):
    dcm = save(make_dataset(film, 8), tmp_path / "a.dcm")
    bare = tmp_path / "IM0001"
    bare.write_bytes(dcm.read_bytes())
    png = save_png(film, tmp_path / "a.png")
    junk = tmp_path / "README"
    junk.write_text("not an image")
    (tmp_path / "folder.dcm").mkdir()

    assert is_dicom(dcm) and is_dicom(tmp_path / "B.DCM")  # the suffix alone suffices
    assert is_dicom(bare) and has_dicom_preamble(bare)
    assert not is_dicom(png) and not is_dicom(junk) and not is_dicom(tmp_path / "folder.dcm")
    assert [p.name for p in sorted(tmp_path.iterdir()) if is_decodable(p)] == ["IM0001", "a.dcm", "a.png"]


def test_extensionless_dicom_in_a_folder_is_read(tmp_path, film):
    ds, expected = case("mono2-12bit", film)
    path = tmp_path / "scans" / "1.2.840.99.7"  # a UID-style name ends in a numeric "suffix"
    path.parent.mkdir()
    save(ds, path)
    loaded = decode_file(path, SPEC)
    assert loaded.kind == "dicom"
    assert_same_input(loaded.pixels, prepare_file(save_png(expected, tmp_path / "e.png"), SPEC).pixels)


def test_dicom_without_preamble_is_read(tmp_path, film):
    ds, expected = case("mono2-8bit", film)
    path = tmp_path / "bare.dcm"
    ds.file_meta = FileMetaDataset()
    ds.save_as(path, enforce_file_format=False, implicit_vr=True, little_endian=True)  # no preamble
    assert not has_dicom_preamble(path)
    assert_same_input(prepare_dicom(path, SPEC).pixels, prepare_file(save_png(expected, tmp_path / "e.png"), SPEC).pixels)


# --- same model input as the equivalent PNG ----------------------------------------------------


@pytest.mark.parametrize(
    "spec, name",
    [pytest.param(SPEC, name, id=f"percentile-{name}") for name in CASES]
    + [pytest.param(SPEC_NONE, name, id=f"none-{name}") for name in CASES_FULL_RANGE],
)
def test_dicom_matches_equivalent_png(tmp_path, film, spec, name):
    """Also without percentile stretching (``none``): then BitsStored / the window's range sets
    the 8-bit scale, as a PNG's bit depth does."""
    ds, expected = case(name, film)
    dcm = save(ds, tmp_path / f"{name}.dcm")
    png = save_png(expected, tmp_path / f"{name}.png")
    assert_same_input(prepare_dicom(dcm, spec).pixels, prepare_file(png, spec).pixels)


def read_gray(path):
    """The decoded grayscale film and its full scale, before resizing and normalisation (the
    display chain's own output, which these tests check step by step)."""
    gray, full_scale, _, _ = dicom._read(path)
    return gray, full_scale


def test_full_scale_follows_bits_stored_and_window(tmp_path, film):
    for name, full in [("mono2-8bit", 255), ("mono2-12bit", 4095), ("mono2-16bit", 65535),
                       ("rescale", 8190), ("voi-window", 4095), ("voi-lut", 255)]:
        gray, full_scale = read_gray(save(case(name, film)[0], tmp_path / f"{name}.dcm"))
        assert full_scale == full, name
        assert gray.dtype == np.float32 and gray.shape == film.shape
        assert 0 <= gray.min() and gray.max() <= full_scale


def test_monochrome2_with_inverse_presentation_shape_is_inverted(tmp_path, film):
    ds = make_dataset(255 - film, 8, PresentationLUTShape="INVERSE")
    gray, _ = read_gray(save(ds, tmp_path / "inv.dcm"))
    np.testing.assert_allclose(gray, film, atol=0)
    ds = make_dataset(255 - film, 8, "MONOCHROME1", PresentationLUTShape="INVERSE")  # DX pairing
    gray, _ = read_gray(save(ds, tmp_path / "mono1-inv.dcm"))
    np.testing.assert_allclose(gray, film, atol=0)


def test_zero_width_window_falls_back_to_full_range(tmp_path, film):
    ds = make_dataset(film.astype(np.uint16) * 16, 12, WindowCenter=2048, WindowWidth=0)
    gray, full_scale = read_gray(save(ds, tmp_path / "w0.dcm"))
    assert full_scale == 4095
    np.testing.assert_allclose(gray, film.astype(np.float32) * 16)


# --- compressed transfer syntaxes --------------------------------------------------------------


def _require_codec(syntax, encode: bool = True):
    if not get_decoder(syntax).is_available:
        pytest.skip(f"no decoder installed for {syntax.name}")
    if encode and not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder installed for {syntax.name}")


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=lambda s: s.name)
@pytest.mark.parametrize("name", ["mono2-12bit", "mono1-8bit", "mono2-16bit"])
def test_lossless_compressed_matches_png(tmp_path, film, syntax, name):
    _require_codec(syntax)
    ds, expected = case(name, film)
    ds.compress(syntax)
    dcm = save(ds, tmp_path / "c.dcm")
    assert pydicom.dcmread(dcm).file_meta.TransferSyntaxUID == syntax
    assert_same_input(prepare_dicom(dcm, SPEC).pixels, prepare_file(save_png(expected, tmp_path / "e.png"), SPEC).pixels)


@pytest.mark.parametrize("color", [False, True], ids=["gray", "ybr"])
def test_jpeg_baseline_matches_the_same_jpeg_file(tmp_path, film, color):
    """A JPEG inside DICOM must look exactly like the same JPEG read as a file."""
    _require_codec(JPEGBaseline8Bit, encode=False)
    image = Image.fromarray(film).convert("RGB" if color else "L")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, subsampling=1 if color else 0)
    jpeg = tmp_path / "film.jpeg"
    jpeg.write_bytes(buffer.getvalue())

    ds = make_dataset(np.asarray(image), 8, "RGB" if color else "MONOCHROME2")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422" if color else "MONOCHROME2"
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    dcm = tmp_path / "jpeg.dcm"
    ds.save_as(dcm)  # keep the JPEG transfer syntax set above
    assert_same_input(prepare_dicom(dcm, SPEC).pixels, prepare_file(jpeg, SPEC).pixels, tol=2)


# --- the same probability as the PNG with a real model ----------------------------------------


@pytest.fixture(scope="module")
def classifier():
    if not MODEL.is_file():
        pytest.skip(f"{MODEL.name} not present")
    from edge_app.classifier import Classifier

    from edge_app.runtime import RuntimeUnavailable

    try:
        return Classifier(MODEL)
    except RuntimeUnavailable as exc:  # no TFLite runtime on this machine; any other error fails
        pytest.skip(f"no TFLite runtime to load {MODEL.name}: {exc}")


@pytest.mark.parametrize("opacity", [0.0, 1.0])
def test_probability_matches_png(tmp_path, classifier, opacity):
    film = synthetic_film(SIZE, seed=11, opacity=opacity)
    spec = classifier.preprocess
    names = CASES + (["rle"] if get_decoder(RLELossless).is_available else [])
    for name in names:
        ds, expected = case("mono1-12bit" if name == "rle" else name, film)
        if name == "rle":
            ds.compress(RLELossless)
        p_dcm = classifier.classify(prepare_dicom(save(ds, tmp_path / f"{name}.dcm"), spec).pixels)
        p_png = classifier.classify(prepare_file(save_png(expected, tmp_path / f"{name}.png"), spec).pixels)
        assert abs(p_dcm - p_png) <= 0.02, (name, p_dcm, p_png)


# --- files we refuse ---------------------------------------------------------------------------


def refusal(path: Path) -> str:
    with pytest.raises(ImageError) as err:
        prepare_dicom(path, SPEC)
    message = str(err.value)
    assert "\n" not in message
    for value in PATIENT.values():
        assert value.split("^")[0] not in message
    return message


def test_multiframe_is_refused(tmp_path, film):
    ds = make_dataset(np.stack([film, film, film]), 8)
    assert int(ds.NumberOfFrames) == 3
    assert "multi-frame" in refusal(save(ds, tmp_path / "cine.dcm"))


def test_missing_pixel_data_is_refused(tmp_path, film):
    ds = make_dataset(film, 8)
    del ds.PixelData
    assert "no pixel data" in refusal(save(ds, tmp_path / "report.dcm"))


def test_garbage_with_dcm_suffix_is_refused(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a DICOM file" in refusal(path)
    path.write_bytes(b"")
    assert "empty" in refusal(path)
    assert "not found" in refusal(tmp_path / "missing.dcm")


def test_png_named_dcm_is_refused(tmp_path, film):
    path = save_png(film, tmp_path / "renamed.png").rename(tmp_path / "renamed.dcm")
    assert "not a DICOM file" in refusal(path)


def test_truncated_pixel_data_is_refused(tmp_path, film):
    path = save(make_dataset(film.astype(np.uint16) * 16, 12), tmp_path / "cut.dcm")
    path.write_bytes(path.read_bytes()[:-5000])
    assert "could not be decoded" in refusal(path)


def test_oversized_header_is_refused_before_decoding(tmp_path, film):
    ds = make_dataset(film, 8)
    ds.Rows = ds.Columns = 20_000  # pixel data left tiny: refusal must come from the header
    assert "too large" in refusal(save(ds, tmp_path / "huge.dcm"))


def test_unsupported_transfer_syntax_is_named(tmp_path, film):
    ds, _ = case("mono2-8bit", film)
    ds.compress(RLELossless)
    ds.file_meta.TransferSyntaxUID = JPEG2000MC  # JPEG 2000 Part 2: pydicom has no decoder
    path = tmp_path / "j2k-mc.dcm"
    ds.save_as(path)
    message = refusal(path)
    assert message.startswith(f"unsupported DICOM transfer syntax {JPEG2000MC.name} (not one of: Implicit VR")


def test_missing_decoder_names_syntax_and_install(tmp_path, film, monkeypatch):
    ds, _ = case("mono2-12bit", film)
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")

    class Unavailable:
        is_available = False

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: Unavailable())
    message = refusal(path)
    assert "RLE Lossless" in message and "pip install" in message


def test_without_pydicom_gives_the_install_hint(tmp_path, film, monkeypatch):
    dcm = save(make_dataset(film, 8), tmp_path / "a.dcm")
    bare = tmp_path / "IM0002"
    bare.write_bytes(dcm.read_bytes())
    png = save_png(film, tmp_path / "a.png")
    for name in [m for m in sys.modules if m == "pydicom" or m.startswith("pydicom.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # makes `import pydicom` raise ImportError

    for path in (dcm, bare):
        assert is_dicom(path)
        with pytest.raises(ImageError) as err:
            decode_file(path, SPEC)
        assert str(err.value) == INSTALL_HINT
    assert decode_file(png, SPEC).kind == "image"  # PNG/JPEG never need pydicom


# --- privacy -----------------------------------------------------------------------------------


def test_info_has_no_identifiers_unless_asked(tmp_path, film):
    ds, _ = case("mono2-12bit", film)
    path = save(ds, tmp_path / "a.dcm")
    loaded = prepare_dicom(path, SPEC)
    image, info = loaded.pixels, loaded.info
    assert image.shape == (64, 64) and loaded.kind == "dicom"
    assert info == {
        "modality": "DX", "body_part": "CHEST", "view_position": "PA", "photometric": "MONOCHROME2",
        "bits_stored": 12, "transfer_syntax": "Explicit VR Little Endian",
    }
    assert not any(value in repr(info) for value in ("Doe", "PID-0042", "20190304"))

    with_ids = prepare_dicom(path, SPEC, with_ids=True).info
    assert with_ids["patient_name"] == "Doe^Jane"
    assert with_ids["patient_id"] == "PID-0042"
    assert with_ids["patient_birth_date"] == "20190304"
    assert dicom_info(pydicom.dcmread(path)) == info and dicom_info(pydicom.dcmread(path), with_ids=True) == with_ids
    assert decode_file(path, SPEC).info == info
    assert decode_file(path, SPEC, with_ids=True).info == with_ids


def test_reading_prints_and_logs_no_patient_data(tmp_path, film, capsys, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = []
        for frames in (np.stack([film, film]), film):  # refused (two frames), and read
            ds = make_dataset(frames, 8)
            ds.PatientBirthDate = "Doe-born-on-a-Tuesday"  # invalid DA: pydicom warns, quoting it
            ds.PatientName = "Doe^Jane" + "x" * 80  # too long for PN: pydicom warns, quoting it
            paths.append(save(ds, tmp_path / f"odd-{len(paths)}.dcm"))
        path, single = paths
    caplog.clear()
    caplog.set_level(logging.DEBUG)  # as if the app had configured logging
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refusal(path)
        assert prepare_dicom(single, SPEC, with_ids=True).info["patient_name"].startswith("Doe^Jane")
    # pydicom's own complaints (here: the overlong name) can quote header values: none escape.
    assert [str(w.message) for w in caught] == [] and caplog.text == ""
    out, err = capsys.readouterr()
    assert "Doe" not in out + err


def _stretched_syntax(path: Path, film: np.ndarray) -> Path:
    """A DICOM file whose TransferSyntaxUID length is stretched over the next bytes, which hold a
    (fake) patient's name and record number, as a corrupt or hostile writer would send it."""
    ds = make_dataset(film, 8)
    ds.file_meta.ImplementationVersionName = "Doe^Jane MRN-998877"
    save(ds, path)
    data = bytearray(path.read_bytes())
    tag = b"\x02\x00\x10\x00UI"  # (0002,0010) explicit VR
    at = data.index(tag)
    length = int.from_bytes(data[at + 6 : at + 8], "little")
    data[at + 6 : at + 8] = (length + 40).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how", ["stretched", "value"])
def test_no_header_value_reaches_any_output_or_the_log_without_with_ids(tmp_path, film, how):
    import json
    import sqlite3

    from typer.testing import CliRunner

    from edge_app.cli import app

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    if how == "stretched":
        path = _stretched_syntax(inbox / "IM0001", film)
    else:  # the value itself quotes the identifiers (pydicom refuses to write it: patch the bytes)
        ds = make_dataset(film, 8)
        ds.Modality = "Doe^Jane MRN-998877"
        data = bytearray(save(ds, inbox / "IM0001").read_bytes())
        old = b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"
        value = b"1.2.840.10008.1.2.1PNDoe^Jane LO MRN-998877\x00"
        at = data.index(old)
        data[at : at + len(old)] = b"\x02\x00\x10\x00UI" + len(value).to_bytes(2, "little") + value
        group = data.index(b"\x02\x00\x00\x00UL\x04\x00") + 8
        grown = int.from_bytes(data[group : group + 4], "little") + len(value) - 20
        data[group : group + 4] = grown.to_bytes(4, "little")
        path = inbox / "IM0001"
        path.write_bytes(bytes(data))
    runner = CliRunner()
    seen = []
    for fmt in ("json", "jsonl", "csv", "table"):
        done = runner.invoke(app, ["predict", str(path), "--model", str(MODEL), "-f", fmt])
        assert done.exit_code in (0, 1), done.output
        seen.append(done.output + done.stderr)
    first = json.loads(runner.invoke(app, ["predict", str(path), "--model", str(MODEL), "-f", "json"]).stdout)[0]
    db = tmp_path / "log.sqlite"
    done = runner.invoke(app, ["watch", str(inbox), "--db", str(db), "--model", str(MODEL), "--once", "--interval", "0.05"])
    seen.append(done.output + done.stderr)
    seen.append(db.read_bytes().decode("latin-1"))
    with sqlite3.connect(db) as raw:
        seen.append(repr(raw.execute("SELECT * FROM results").fetchall()))
    for fmt in ("csv", "json", "table"):
        shown = runner.invoke(app, ["history", "--db", str(db), "-f", fmt])
        seen.append(shown.output + shown.stderr)
    for text in seen:
        assert "Doe" not in text and "998877" not in text and "Jane" not in text
    if how == "stretched":
        assert "error" in first  # which one depends on what the stretch swallowed; never its bytes
    else:
        assert first["error"].startswith("unsupported DICOM transfer syntax (not one of: ")
        assert "Explicit VR Little Endian" in first["error"]  # what it accepts, from pydicom's registry


def test_acquisition_fields_outside_the_defined_terms_are_not_shown(tmp_path, film):
    ds = make_dataset(film, 8)
    ds.Modality = "DOE JANE"
    ds.ViewPosition = "MRN998877"
    info = prepare_dicom(save(ds, tmp_path / "a.dcm"), SPEC).info
    assert info["modality"] == "other" and info["view_position"] == "other" and info["body_part"] == "CHEST"
