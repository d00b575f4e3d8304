"""The one preprocessing path: shapes, dtypes, odd-but-valid images, and refusals."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app.preprocessing import (
    MAX_PIXELS,
    MIN_SIDE,
    ImageError,
    PreprocessSpec,
    normalize_intensity,
    open_image,
    is_image_name,
    prepare_array,
    prepare_file,
)
from edge_helpers import HOSTILE, exif_rotated_jpeg, png_header_only, write_hostile_inputs

SPEC = PreprocessSpec(64)


def save(array: np.ndarray, path: Path, **kw) -> Path:
    Image.fromarray(array).save(path, **kw)
    return path


@pytest.mark.parametrize("size", [16, 64, 128])
def test_output_shape_and_dtype(tmp_path, size):
    out = prepare_file(save(synthetic_film(200), tmp_path / "f.png"), PreprocessSpec(size)).pixels
    assert out.shape == (size, size) and out.dtype == np.uint8


@pytest.mark.parametrize("name", sorted(n for n, (_, reason) in HOSTILE.items() if reason is None))
def test_odd_but_valid_images_are_screened(tmp_path, name):
    out = prepare_file(write_hostile_inputs(tmp_path)[name], SPEC).pixels
    assert out.shape == (64, 64) and out.dtype == np.uint8 and out.max() > out.min()


@pytest.mark.parametrize("name", sorted(n for n, (_, reason) in HOSTILE.items() if reason is not None))
def test_hostile_images_raise_image_error_with_reason(tmp_path, name):
    path = write_hostile_inputs(tmp_path)[name]
    with pytest.raises(ImageError, match=HOSTILE[name][1]):
        prepare_file(path, SPEC)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        prepare_file(tmp_path, SPEC)


def test_sixteen_bit_keeps_its_depth(tmp_path):
    film = synthetic_film(128).astype(np.float64)
    as16 = save((film * 257).astype(np.uint16), tmp_path / "f16.png")
    as12 = save((film * 16).astype(np.uint16), tmp_path / "f12.png")  # 12-bit in a 16-bit container
    as8 = save(film.astype(np.uint8), tmp_path / "f8.png")
    spec = PreprocessSpec(64, normalization="none")
    ref = prepare_file(as8, spec).pixels.astype(int)
    assert Image.open(as16).mode.startswith("I")
    assert np.abs(prepare_file(as16, spec).pixels.astype(int) - ref).max() <= 1
    # Equal to the 8-bit film only if its full scale was taken as 4095 (65535 would be ~16x darker).
    twelve = prepare_file(as12, spec).pixels.astype(int)
    assert np.abs(twelve - ref).max() <= 2 and twelve.max() > 255 // 16 + 2


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, 50:, 3] = 255  # left half fully transparent
    out = prepare_file(save(rgba, tmp_path / "a.png"), PreprocessSpec(64, normalization="none")).pixels
    assert out[:, :28].max() == 0 and out[:, 36:].min() == 200


def test_palette_image_matches_its_grayscale(tmp_path):
    film = synthetic_film(128)
    palette = Image.fromarray(film).convert("P")
    palette.save(tmp_path / "p.png")
    spec = PreprocessSpec(64)
    diff = prepare_file(tmp_path / "p.png", spec).pixels.astype(int) - prepare_file(save(film, tmp_path / "g.png"), spec).pixels
    assert np.abs(diff).mean() < 2


def test_exif_rotation_is_applied(tmp_path):
    out = prepare_file(exif_rotated_jpeg(tmp_path / "r.jpg"), PreprocessSpec(64, normalization="none")).pixels
    top, bottom = out[:28].mean(), out[36:].mean()
    left, right = out[:, :28].mean(), out[:, 36:].mean()
    assert top > 180 and bottom < 80  # displayed upright: bright half on top
    assert abs(left - right) < 10


def test_non_square_is_stretched_to_square(tmp_path):
    wide = np.zeros((100, 300), np.uint8)
    wide[:, 150:] = 255
    out = prepare_file(save(wide, tmp_path / "w.png"), PreprocessSpec(64, normalization="none")).pixels
    assert out.shape == (64, 64) and out[:, :30].max() == 0 and out[:, 34:].min() == 255


def test_percentile_normalisation_removes_exposure_differences():
    film = synthetic_film(128).astype(np.float32)
    a = normalize_intensity(film, 255.0, "percentile")
    b = normalize_intensity(film * 0.4 + 60, 255.0, "percentile")  # under-exposed, fogged
    assert a.min() == 0 and a.max() == 255
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # the 0.5% tails are clipped, not stretched over
    low, high = np.percentile(film, (0.5, 99.5))
    assert (a == 0).mean() <= 0.01 and (a == 255).mean() <= 0.01 and high > low


def _with_white_corner_letter(film: np.ndarray) -> np.ndarray:
    """``film`` with a white block in the top-left corner covering ~1.5% of it, like a large
    burnt-in "R" (more than the 0.5% the 99.5th percentile lets through)."""
    marked = film.copy()
    side = film.shape[0]
    marked[4 : 4 + side // 8, 4 : 4 + side // 8] = 255.0
    return marked


def test_central_percentile_ignores_a_large_corner_letter_that_percentile_does_not():
    film = synthetic_film(128).astype(np.float32) * 0.8  # the film itself never reaches white
    marked = _with_white_corner_letter(film)
    outside = np.ones(film.shape, bool)
    outside[: 4 + 128 // 8 + 1, : 4 + 128 // 8 + 1] = False
    central = [normalize_intensity(f, 255.0, "central-percentile").astype(int) for f in (film, marked)]
    plain = [normalize_intensity(f, 255.0, "percentile").astype(int) for f in (film, marked)]
    assert np.array_equal(central[0][outside], central[1][outside])  # the child's pixels do not move
    assert np.abs(plain[0][outside] - plain[1][outside]).mean() > 5  # the whole film's contrast did


def test_central_percentile_reads_the_central_half_and_stretches_the_whole_film():
    from edge_app.preprocessing import central

    film = np.full((100, 100), 200.0, np.float32)
    film[25:75, 25:75] = np.linspace(50, 150, 50, dtype=np.float32)[None, :]
    assert central(film).shape == (50, 50) and central(film).min() == 50
    out = normalize_intensity(film, 255.0, "central-percentile")
    assert out[50, 25] == 0 and out[50, 74] == 255  # the central range spans 0..255
    assert np.all(out[:20] == 255)  # brighter than the central range: clipped, not re-stretched
    assert PreprocessSpec(128, "central-percentile").id == "gray-128px-central-percentile-v1"


def test_the_gate_reads_a_central_percentile_film_with_the_plain_stretch(tmp_path):
    film = _with_white_corner_letter(synthetic_film(128).astype(np.float32) * 0.8)
    path = save(np.clip(film, 0, 255).astype(np.uint8), tmp_path / "film.png")
    central = prepare_file(path, PreprocessSpec(64, "central-percentile"))
    plain = prepare_file(path, PreprocessSpec(64, "percentile"))
    assert PreprocessSpec(64, "central-percentile").gate_spec() == PreprocessSpec(64, "percentile")
    assert np.array_equal(central.gate_view, plain.pixels)  # what the gate's ranges were fitted on
    assert not np.array_equal(central.pixels, plain.pixels)
    assert plain.gate_pixels is None and plain.gate_view is plain.pixels  # no second copy


def test_uniform_image_keeps_its_level():
    out = normalize_intensity(np.full((64, 64), 100.0, np.float32), 255.0, "percentile")
    assert np.all(out == 100)


def test_normalisation_none_scales_by_bit_depth():
    out = normalize_intensity(np.array([[0.0, 2047.5, 4095.0]], np.float32), 4095.0, "none")
    assert out.tolist() == [[0, 128, 255]]


def test_spec_round_trip_and_validation():
    spec = PreprocessSpec(128, "none")
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert spec.id == "gray-128px-none-v1"
    with pytest.raises(ValueError):
        PreprocessSpec(64, "zscore")
    with pytest.raises(ValueError):
        PreprocessSpec(8)


def test_preprocess_array_checks_shape_and_size():
    with pytest.raises(ImageError, match="single grayscale frame"):
        prepare_array(np.zeros((2, 64, 64)), 255.0, SPEC)
    with pytest.raises(ImageError, match="too small"):
        prepare_array(np.zeros((MIN_SIDE - 1, 100)), 255.0, SPEC)
    assert prepare_array(np.zeros((100, 100)), 255.0, SPEC).pixels.shape == (64, 64)


def test_refused_images_do_not_leak_file_handles(tmp_path):
    path = save(synthetic_film(32), tmp_path / "small.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            with pytest.raises(ImageError, match="too small"):
                open_image(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


BOMB_PROBE = """
import json, resource, sys, time
from edge_app.preprocessing import ImageError, PreprocessSpec, prepare_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    prepare_file(sys.argv[1], PreprocessSpec(64)).pixels
    error = None
except ImageError as exc:
    error = str(exc)
print(json.dumps({"error": error, "seconds": time.perf_counter() - start,
                  "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""


@pytest.mark.parametrize("side", [30_000, 7_000, 65_000])
def test_decompression_bomb_is_refused_fast_without_allocating(tmp_path, side):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(side, side))
    assert bomb.stat().st_size < 200 and side * side > MAX_PIXELS
    done = subprocess.run([sys.executable, "-c", BOMB_PROBE, str(bomb)], capture_output=True, text=True, timeout=60)
    probe = json.loads(done.stdout)
    assert "too large" in probe["error"]
    assert probe["seconds"] < 0.5
    assert probe["grew_kb"] < 20_000  # decoding it would take side*side bytes (49 MB to 4 GB)


def test_equalize_removes_any_monotonic_exposure_change():
    from edge_app.preprocessing import normalize_intensity

    gray = np.random.default_rng(0).normal(100, 20, (64, 64)).clip(0, 255).astype(np.float32)
    base = normalize_intensity(gray, 255.0, "equalize")
    for changed in (255 * (gray / 255) ** 1.6, 0.5 * gray + 40):
        assert np.array_equal(normalize_intensity(changed.astype(np.float32), 255.0, "equalize"), base)
    assert base.min() == 0 and base.max() == 255
    assert normalize_intensity(np.full((64, 64), 9.0, np.float32), 255.0, "equalize").std() == 0


def test_image_names_in_any_case():
    assert all(is_image_name(n) for n in ("a.jpg", "a.JPG", "a.jpeg", "a.JPEG", "a.Png"))
    assert not any(is_image_name(n) for n in ("a.gif", "a.dcm", "a.jpeg.bak", "jpeg"))


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "BMP", "WEBP"])
def test_other_formats_are_refused_naming_what_is_accepted(tmp_path, fmt):
    from edge_app.preprocessing import ImageError, PreprocessSpec, prepare_file

    for name in (f"film.{fmt.lower()}", "film.png"):  # named as it is, or disguised as PNG
        path = tmp_path / name
        Image.fromarray(synthetic_film(128)).save(path, format=fmt)
        with pytest.raises(ImageError, match=r"^not an image this device reads \(formats accepted: JPEG, PNG or DICOM\)$"):
            prepare_file(path, PreprocessSpec(64))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "I;16", "P"])
def test_large_images_are_reduced_in_stripes_like_pillow_reduces_them(mode):
    from edge_app.preprocessing import _reduce

    base = synthetic_film(700, seed=3)
    if mode == "I;16":
        image = Image.fromarray(base.astype(np.uint16) * 257)
        expected = np.asarray(Image.fromarray(base).reduce(7)).astype(np.int64) * 257
        assert np.abs(np.asarray(_reduce(image, 7)).astype(np.int64) - expected).max() <= 257
        return
    image = Image.fromarray(base).convert(mode)
    reference = image.convert("RGB") if mode == "P" else image
    assert np.array_equal(np.asarray(_reduce(image, 7)), np.asarray(reference.reduce(7)))
