"""Helpers for the edge-app tests: the tiny model, and the hostile inputs a clinic throws at it.

Import the fixtures into a test module with ``from edge_helpers import tiny_model``.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film

DATA = Path(__file__).resolve().parent / "data"
TINY_MODEL = DATA / "tiny-int8.tflite"
#: A tiny model with a pattern head (bacterial/viral), float32 (see tests/data/make_tiny_model.py).
TINY_PATTERN_MODEL = DATA / "tiny-pattern-fp32.tflite"


@pytest.fixture
def tiny_model() -> Path:
    if not TINY_MODEL.is_file():
        pytest.fail(f"{TINY_MODEL} is missing: make it with tests/data/make_tiny_model.py")
    return TINY_MODEL


@pytest.fixture
def tiny_pattern_model() -> Path:
    if not TINY_PATTERN_MODEL.is_file():
        pytest.fail(f"{TINY_PATTERN_MODEL} is missing: make it with tests/data/make_tiny_model.py --pattern")
    return TINY_PATTERN_MODEL


def pattern_films(tmp_path: Path) -> dict[str, Path]:
    """Films the tiny pattern model was trained to tell apart: a clear one, and opacities in
    either lung (bacterial on the right of the image, viral on the left), as PNG files."""
    paths = {}
    for name, opacity, side in (("clear", 0.0, 0.7), ("bacterial", 1.0, 0.7), ("viral", 1.0, 0.3)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(synthetic_film(64, seed=7, opacity=opacity, side=side)).save(paths[name])
    return paths


def expected_runtime() -> str:
    """The TFLite runtime the device should pick on this install, found without edge_app: LiteRT
    on ``[edge]``, tflite_runtime on ``[edge-legacy]`` (``PNEUMOSCAN_RUNTIME`` forces one)."""
    import importlib.util
    import os

    forced = os.environ.get("PNEUMOSCAN_RUNTIME")
    if forced:
        return forced
    for name, module in (("litert", "ai_edge_litert"), ("tflite_runtime", "tflite_runtime"), ("tensorflow", "tensorflow")):
        if importlib.util.find_spec(module) is not None:
            return name
    pytest.skip("no TFLite runtime installed")


def minimal_contract() -> dict:
    """The smallest contract the device accepts (64 px, logit output); tests change one field."""
    from edge_app.preprocessing import PreprocessSpec

    return {
        "format": "pneumoscan-model/1",
        "labels": ["NORMAL", "PNEUMONIA"],
        "image_size": 64,
        "channels": 1,
        "input_dtype": "uint8",
        "output": "logit",
        "threshold": 0.5,
        "uncertain_band": [0.4, 0.6],
        "version": "test",
        "preprocessing": PreprocessSpec(64).to_dict(),
        "metrics": {"val_auc": 0.9},
    }


def tiny_metadata() -> dict:
    """The tiny model's contract as written beside it (threshold, version, ... are its own)."""
    import json

    return json.loads(Path(f"{TINY_MODEL}.json").read_text())


def model_flatbuffer(model: Path) -> bytes:
    """The ``.tflite`` bytes without the appended metadata archive."""
    import zipfile

    data = model.read_bytes()
    with zipfile.ZipFile(model) as archive:
        return data[: archive.infolist()[0].header_offset]


def model_with_metadata(path: Path, metadata, source: Path = TINY_MODEL, *, seal: bool = True) -> Path:
    """``source``'s flatbuffer at ``path`` carrying ``metadata`` exactly as given, valid or not
    (what a hand-edited model file holds), written without the exporter's checks; sealed with a
    matching integrity field unless ``seal`` is False (then as a tampered file would be)."""
    import json

    from edge_app.contract import metadata_archive, sealed

    flatbuffer = model_flatbuffer(source)
    if seal and isinstance(metadata, dict):
        metadata = sealed(flatbuffer, metadata)
    path.write_bytes(flatbuffer + metadata_archive(json.dumps(metadata).encode(), len(flatbuffer)))
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width x height`` (a decompression bomb's calling card):
    the IHDR is valid, the pixel data is a few bytes. Opening it must fail on size alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(array: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


def exif_rotated_jpeg(path: Path) -> Path:
    """A 200x100 film stored sideways (bright left half) with EXIF orientation 6 (rotate 90
    clockwise to display): displayed correctly it is 100x200 with the bright half on top."""
    array = np.full((100, 200), 40, np.uint8)
    array[:, :100] = 220
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(array).save(path, quality=95, exif=exif.tobytes())
    return path


#: name -> (file name, substring of the expected error, or None when the image must be screened)
HOSTILE = {
    "missing": ("missing.jpeg", "file not found"),
    "empty": ("empty.jpeg", "empty file"),
    "text": ("notes.jpeg", "not an image"),
    "truncated": ("truncated.jpeg", "truncated or corrupt"),
    "too_small": ("tiny.png", "too small"),
    "bomb": ("bomb.png", "too large"),
    "bomb_just_over": ("bomb2.png", "too large"),
    "rgba": ("rgba.png", None),
    "palette": ("palette.png", None),
    "gray16": ("gray16.png", None),
    "non_square": ("wide.jpg", None),
    "exif_rotated": ("rotated.jpg", None),
    "upper_case": ("UPPER.JPEG", None),
    "upper_png": ("Film.PNG", None),
}


def write_hostile_inputs(folder: Path) -> dict[str, Path]:
    """Write every case of :data:`HOSTILE` (except the missing one) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / file for name, (file, _) in HOSTILE.items()}
    film = synthetic_film(160, seed=1)
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("Patient list, not an image\n")
    full = jpeg_bytes(synthetic_film(256, seed=2))
    paths["truncated"].write_bytes(full[: len(full) // 2])
    Image.fromarray(synthetic_film(32)).save(paths["too_small"])
    paths["bomb"].write_bytes(png_header_only(30_000, 30_000))
    paths["bomb_just_over"].write_bytes(png_header_only(7_000, 7_000))  # 49 MP, limit 40 MP
    rgba = np.dstack([film, film, film, np.full_like(film, 200)])
    Image.fromarray(rgba, mode="RGBA").save(paths["rgba"])
    Image.fromarray(film).convert("RGB").quantize(64).save(paths["palette"])
    Image.fromarray(film.astype(np.uint16) * 257).save(paths["gray16"])
    Image.fromarray(synthetic_film(300, seed=3)[:180]).save(paths["non_square"], quality=95)
    exif_rotated_jpeg(paths["exif_rotated"])
    Image.fromarray(film).save(paths["upper_case"], format="JPEG", quality=95)
    Image.fromarray(film).save(paths["upper_png"], format="PNG")
    return paths
