"""DICOM input: one radiograph in a DICOM file becomes the grayscale array preprocessing expects.

pydicom is the optional ``[dicom]`` extra and is imported only when a DICOM file is read, so the
base device install and ``import edge_app`` never need it. Pixels go through the DICOM grayscale
display chain (PS3.3 C.11, PS3.4 N.2) so the model sees what a radiologist's viewer shows, which
is what the training PNGs/JPEGs were exported from:

1. decode the stored values (compressed transfer syntaxes need a decoder pydicom can find:
   Pillow covers JPEG baseline and JPEG 2000, pylibjpeg/gdcm cover JPEG lossless and JPEG-LS);
2. Modality LUT: the Modality LUT Sequence, else Rescale Slope/Intercept;
3. VOI LUT: the VOI LUT Sequence, else the first Window Center/Width;
4. shift to ``0..full_scale``, where ``full_scale`` is the output range of the last step applied
   (the window's output range, the LUT's bit depth, or the BitsStored range through step 2), so
   12- and 16-bit films reach 8 bits exactly as a 12/16-bit PNG would;
5. MONOCHROME1 (and MONOCHROME2 with Presentation LUT Shape INVERSE) inverted, so bright means
   dense as in the training images. Colour images (RGB, YBR_*, PALETTE COLOR) become ITU-R 601
   luma, like Pillow's ``convert("L")``.

:func:`edge_app.preprocessing.prepare_array` does the rest, so DICOM and PNG input share one
resize and one intensity normalisation.

Privacy: no value read from a header reaches a result, an error, a warning or a log unless it is
a patient identifier the caller asked for (``with_ids``). Errors name the problem, never the bytes
("unsupported DICOM transfer syntax (not one of ...)"); the acquisition fields a result carries
(:func:`dicom_info`) are kept only when they are one of the standard's defined terms (a Modality
of ``"DX"``, not a stretched element spilling a patient's name); a transfer syntax is named only
by pydicom's registry; pydicom's warnings and log records, which quote header values, are
silenced while reading, and anything unexpected becomes a fixed message.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.preprocessing import (
    ImageError,
    ModelInput,
    PreprocessSpec,
    check_dimensions,
    measure_colourfulness,
    open_regular,
    prepare_array,
)

DICOM_SUFFIXES = (".dcm", ".dicom")

INSTALL_HINT = "DICOM support is not installed: pip install 'pneumoscan[dicom]'"

#: A DICOM Part 10 file starts with a 128-byte preamble and these four bytes.
_PREAMBLE_SIZE = 128
_MAGIC = b"DICM"

#: Header values larger than this are read only when used, so a refused file (multi-frame, too
#: large) never loads its pixel data.
_DEFER_SIZE = "256 KB"

#: Fields safe to put in a result: they describe the acquisition, not the patient.
_SAFE_FIELDS = {
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "view_position": "ViewPosition",
    "photometric": "PhotometricInterpretation",
}
#: The values of :data:`_SAFE_FIELDS` a result may show (PS3.3 C.7.3.1.1.1, PS3.16 CID 4031,
#: C.8.11.5, C.7.6.3.1.2): any other value, which could be anything a writer or an attacker put
#: there, is reported as ``"other"``.
_DEFINED_TERMS = {
    "Modality": frozenset(
        "CR DX RF XA MG CT MR US NM PT OT SC IO PX RG DG XC ES ECG DOC PR KO SR SEG REG".split()
    ),
    "BodyPartExamined": frozenset(
        "CHEST THORAX LUNG ABDOMEN CHESTABDOMEN CHEST_TO_PELVIS NECK SHOULDER SPINE TSPINE "
        "CSPINE LSPINE HEAD SKULL PELVIS HIP ARM HAND LEG KNEE FOOT WHOLEBODY HEART RIB CLAVICLE "
        "STERNUM EXTREMITY".split()
    ),
    "ViewPosition": frozenset("AP PA LL RL LLD RLD LLO RLO LPO RPO LAO RAO LATERAL".split()),
    "PhotometricInterpretation": frozenset(
        ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422",
         "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420")
    ),
}
#: Identifying fields, returned only with ``with_ids=True`` (the CLI's ``--with-ids``).
_ID_FIELDS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
}


def is_dicom(path: str | Path) -> bool:
    """True for a ``.dcm``/``.dicom`` file (any case) or any file with the DICOM preamble."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return not path.is_dir()
    return has_dicom_preamble(path)


def has_dicom_preamble(path: str | Path) -> bool:
    """True if ``path`` is a regular file that starts with a 128-byte preamble and ``DICM``
    (reads 132 bytes; a named pipe or a device is never opened, see ``open_regular``)."""
    try:
        with open_regular(path) as fh:
            head = fh.read(_PREAMBLE_SIZE + len(_MAGIC))
    except (OSError, ImageError):
        return False
    return head[_PREAMBLE_SIZE:] == _MAGIC


def prepare_dicom(
    path: str | Path, spec: PreprocessSpec, with_ids: bool = False, display_side: int | None = None
) -> ModelInput:
    try:
        with quiet_pydicom():
            return _prepare_dicom(path, spec, with_ids, display_side)
    except (ImageError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - its text could quote a header value
        raise ImageError(f"corrupt DICOM file ({type(exc).__name__})") from None


def _prepare_dicom(
    path: str | Path, spec: PreprocessSpec, with_ids: bool = False, display_side: int | None = None
) -> ModelInput:
    """A single-frame DICOM file as :class:`~edge_app.preprocessing.ModelInput` (``kind``
    ``"dicom"``, its :func:`dicom_info` in ``info``), from one read of the file.

    Raises :class:`ImageError` with a one-line reason (no patient data) if the file cannot be
    used: pydicom missing, not DICOM, multi-frame, no pixel data, undecodable transfer syntax.
    ``with_ids`` adds the patient's name, ID and birth date to ``info``.
    """
    gray, full_scale, colour, ds = _read(path)
    measured = 0.0 if colour is None else measure_colourfulness(*colour)
    prepared = prepare_array(gray, full_scale, spec, measured, display_side)
    return replace(prepared, kind="dicom", info=dicom_info(ds, with_ids=with_ids))


def info_keys(with_ids: bool = False) -> tuple[str, ...]:
    """The keys :func:`dicom_info` returns (the CSV columns a DICOM result can fill)."""
    keys = (*_SAFE_FIELDS, "bits_stored", "transfer_syntax")
    return (*keys, *_ID_FIELDS) if with_ids else keys


def dicom_info(dataset: Any, with_ids: bool = False) -> dict[str, Any]:
    """Fields for a result record from a pydicom ``Dataset``: acquisition fields always, patient
    identifiers only on request."""
    with quiet_pydicom():
        info: dict[str, Any] = {key: _defined_term(dataset, tag) for key, tag in _SAFE_FIELDS.items()}
        bits = _field(dataset, "BitsStored")
        info["bits_stored"] = int(bits) if bits and bits.isdigit() and 1 <= int(bits) <= 32 else None
        info["transfer_syntax"] = _syntax_name(dataset)
        if with_ids:
            info.update({key: _field(dataset, tag) for key, tag in _ID_FIELDS.items()})
    return info


# --- reading -----------------------------------------------------------------------------------


def _import_pydicom():
    try:
        import pydicom
    except ImportError:
        raise ImageError(INSTALL_HINT) from None
    try:
        import pydicom.pixels  # noqa: F401  (pydicom >= 3)
    except ImportError:
        raise ImageError(
            "DICOM support needs pydicom 3 or newer: pip install -U 'pneumoscan[dicom]'"
        ) from None
    return pydicom


@contextlib.contextmanager
def quiet_pydicom():
    """Silence pydicom's warnings and log records: they can quote header values such as a
    patient's name, and would reach the console of any app that configures logging."""
    logger = logging.getLogger("pydicom")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = was_disabled


class _Unnamed:
    """A file pydicom reads as a buffer: without a ``name`` it never reopens the file by path."""

    def __init__(self, handle):
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        return self._handle.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        self._handle.close()


def _open_dataset(path: Path):
    pydicom = _import_pydicom()
    from pydicom.errors import InvalidDicomError

    kwargs = {"defer_size": _DEFER_SIZE}
    # Kept open for the dataset's life: deferred values (the pixel data) are read from this very
    # descriptor, never by opening the path again (it could be a named pipe by then).
    handle = _Unnamed(open_regular(path))
    try:
        with quiet_pydicom():
            try:
                ds = pydicom.dcmread(handle, **kwargs)
            except InvalidDicomError:
                # No preamble: some older writers and PACS exports store the bare dataset. Accept
                # it only if it parses into something image-like, so random bytes stay refused.
                handle.seek(0)
                ds = pydicom.dcmread(handle, force=True, **kwargs)
                if "SOPClassUID" not in ds and not ("Rows" in ds and "Columns" in ds):
                    raise ImageError("not a DICOM file") from None
    except BaseException as exc:
        handle.close()
        if isinstance(exc, ImageError) or not isinstance(exc, Exception):
            raise
        if isinstance(exc, OSError):
            raise ImageError(f"cannot read file: {exc.strerror or 'I/O error'}") from None
        # pydicom's messages may quote header bytes; say only what went wrong.
        raise ImageError("not a DICOM file, or its header is corrupt") from None
    return ds, handle


def _read(path: str | Path):
    ds, handle = _open_dataset(Path(path))
    try:
        return _read_pixels(ds)
    finally:
        handle.close()


def _read_pixels(ds):
    try:
        with quiet_pydicom():
            _check_header(ds)
    except ImageError:
        raise
    except Exception:
        raise ImageError("corrupt DICOM header (image description unreadable)") from None
    pixels = _decode(ds)
    try:
        with quiet_pydicom():
            colour = _colour_source(ds, pixels)
            gray, full_scale = _to_grayscale(ds, pixels, colour)
    except ImageError:
        raise
    except Exception:
        raise ImageError("corrupt DICOM header (pixel transformation unreadable)") from None
    return gray, full_scale, colour, ds


def _check_header(ds) -> None:
    """Refuse what we cannot screen before any pixel is decoded."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ImageError("DICOM float pixel data is not supported (not a radiograph)")
        raise ImageError("DICOM file has no pixel data (not an image)")
    frames = ds.get("NumberOfFrames")
    frames = int(frames) if frames not in (None, "") else 1
    if frames > 1:
        raise ImageError("multi-frame DICOM is not supported: send one radiograph")
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if not rows or not columns:
        raise ImageError("DICOM header lacks the image size (Rows/Columns)")
    check_dimensions((int(columns), int(rows)))


def _decode(ds) -> np.ndarray:
    from pydicom import uid as uids
    from pydicom.pixels import get_decoder

    from pydicom.dataset import FileMetaDataset

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    syntax = meta.get("TransferSyntaxUID")
    if syntax is None:
        # A bare dataset has no file meta; pydicom recorded how it parsed it.
        implicit, little = getattr(ds, "original_encoding", (True, True))
        if implicit:
            syntax = uids.ImplicitVRLittleEndian
        elif little is False:
            syntax = uids.ExplicitVRBigEndian
        else:
            syntax = uids.ExplicitVRLittleEndian
        meta.TransferSyntaxUID = syntax
    name = _syntax_name(ds)
    try:
        decoder = get_decoder(syntax) if name is not None else None
    except NotImplementedError:
        decoder = None
    if decoder is None:
        named = f" {name}" if name else ""  # a registry name, never the header's own text
        raise ImageError(
            f"unsupported DICOM transfer syntax{named} (not one of: {', '.join(supported_syntaxes())})"
        )
    if not decoder.is_available:
        raise ImageError(
            f"no decoder installed for DICOM transfer syntax {name}: "
            "pip install 'pneumoscan[dicom]' (or python-gdcm)"
        )
    try:
        with quiet_pydicom():
            return ds.pixel_array
    except MemoryError:
        raise ImageError("not enough memory to decode this DICOM image") from None
    except Exception:
        raise ImageError(
            f"DICOM pixel data could not be decoded ({name}): truncated or corrupt"
        ) from None


# --- pixels ------------------------------------------------------------------------------------


def _to_grayscale(
    ds, pixels: np.ndarray, colour: tuple[np.ndarray, float] | None
) -> tuple[np.ndarray, float]:
    """``(gray, full_scale)``: a colour image (``colour``, from :func:`_colour_source`) as its
    luma, a monochrome one through the display chain."""
    if colour is not None:
        rgb, full_scale = colour
        return _luma(rgb), full_scale
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageError(
            "unsupported DICOM photometric interpretation (not one of: MONOCHROME1, MONOCHROME2, "
            "RGB, YBR_*, PALETTE COLOR)"
        )

    values, low, high = _apply_modality(ds, pixels, bits)
    values, low, high = _apply_voi(ds, values, low, high)
    full_scale = high - low
    if full_scale <= 0:
        raise ImageError("DICOM header gives the image no intensity range")
    gray = np.clip(values - low, 0.0, full_scale)
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    # PS3.3 C.8.11.1.1.2: INVERSE "accounts for" MONOCHROME1, so the two invert only once.
    if photometric == "MONOCHROME1" or shape == "INVERSE":
        gray = full_scale - gray
    return gray.astype(np.float32), float(full_scale)


def _colour_source(ds, pixels: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(RGB array, full scale)`` of a colour image (for the gray conversion and the input
    gate), None for monochrome. A palette is applied; RGB is as stored, and YBR_* was already
    converted to RGB by pydicom."""
    from pydicom.pixels import apply_color_lut

    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        return rgb, float(np.iinfo(rgb.dtype).max)
    if pixels.ndim == 3:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
        return pixels, float(2**bits - 1)
    return None


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _apply_modality(ds, pixels: np.ndarray, bits: int) -> tuple[np.ndarray, float, float]:
    """Modality LUT or rescale, with the output range the stored bit depth can reach."""
    from pydicom.pixels import apply_modality_lut

    if int(ds.get("PixelRepresentation", 0)) == 1:
        stored = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    else:
        stored = (0, 2**bits - 1)
    lut = ds.get("ModalityLUTSequence")
    if lut:
        depth = int(lut[0].LUTDescriptor[2])
        return apply_modality_lut(pixels, ds).astype(np.float64), 0.0, float(2**depth - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        ends = apply_modality_lut(np.array(stored, dtype=np.float64), ds)
        values = apply_modality_lut(pixels, ds).astype(np.float64)
        return values, float(ends.min()), float(ends.max())
    return pixels.astype(np.float64), float(stored[0]), float(stored[1])


def _apply_voi(ds, values: np.ndarray, low: float, high: float) -> tuple[np.ndarray, float, float]:
    """VOI LUT (preferred, as pydicom does) or the first window; unchanged if neither is usable."""
    from pydicom.pixels import apply_windowing

    table = _voi_lut_table(ds)
    if table is not None:
        lut, first_mapped, depth = table
        index = np.clip(np.rint(values) - first_mapped, 0, len(lut) - 1).astype(np.intp)
        return lut[index].astype(np.float64), 0.0, float(2**depth - 1)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            windowed = apply_windowing(values, ds)
            # The window's output range: probe it below and above any possible input.
            ends = apply_windowing(np.array([low - 1e12, high + 1e12]), ds)
        except (ValueError, TypeError, IndexError, ZeroDivisionError):
            # A window of width 0 (or unparsable) is a broken display hint, not a broken image;
            # viewers fall back to the full range, and so do we.
            return values, low, high
        return windowed, float(ends.min()), float(ends.max())
    return values, low, high


def _voi_lut_table(ds) -> tuple[np.ndarray, int, int] | None:
    """``(table, first mapped value, bits per entry)`` of the first VOI LUT, or None.

    Done here rather than with pydicom's ``apply_voi``: pydicom 3.0 indexes an 8-bit LUT through
    a uint8 array, which wraps the inputs of a 12-bit image with more than 256 entries.
    """
    sequence = ds.get("VOILUTSequence")
    if not sequence:
        return None
    item = sequence[0]
    if "LUTDescriptor" not in item or "LUTData" not in item:
        return None
    entries, first_mapped, depth = (int(v) for v in item.LUTDescriptor)
    entries = entries or 2**16
    data = item.LUTData
    if isinstance(data, (bytes, bytearray)):
        if depth == 8 and len(data) == entries:
            lut = np.frombuffer(data, dtype=np.uint8)
        else:
            little = getattr(ds, "original_encoding", (None, True))[1] is not False
            lut = np.frombuffer(data, dtype="<u2" if little else ">u2")
    else:
        lut = np.atleast_1d(np.asarray(data, dtype=np.int64))
    lut = lut[:entries]
    if lut.size == 0:
        return None
    # Some writers declare fewer bits than their entries use; trust the entries then.
    depth = max(depth, int(lut.max()).bit_length())
    return lut, first_mapped, depth


# --- header text -------------------------------------------------------------------------------


def supported_syntaxes() -> list[str]:
    """Names of the transfer syntaxes this installation can decode (pydicom's registry names)."""
    from pydicom import uid as uids
    from pydicom.pixels import get_decoder

    names = []
    for syntax in uids.AllTransferSyntaxes:
        try:
            if get_decoder(syntax).is_available:
                names.append(syntax.name)
        except NotImplementedError:
            continue
    return names


def _syntax_name(ds) -> str | None:
    """The registry name of the file's transfer syntax, or None: never the header's own text,
    which for an unknown UID could be anything (a stretched element holding a patient's name)."""
    from pydicom import uid as uids

    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None or str(syntax) not in uids.UID_dictionary:
        return None
    if not uids.UID(str(syntax)).is_transfer_syntax:
        return None
    return uids.UID(str(syntax)).name


def _defined_term(ds, keyword: str) -> str | None:
    """``keyword``'s value if it is one of the standard's defined terms, ``"other"`` if it is
    something else, None when absent."""
    value = _field(ds, keyword)
    if value is None:
        return None
    value = value.strip().upper()
    return value if value in _DEFINED_TERMS[keyword] else "other"


def _field(ds, keyword: str) -> str | None:
    """One header value as text; a value pydicom cannot parse counts as absent."""
    try:
        return _text(ds.get(keyword))
    except Exception:
        return None


def _text(value: Any, limit: int = 64) -> str | None:
    """A header value as a short single-line string, or None when absent or empty."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable())[:limit]
    return text or None
