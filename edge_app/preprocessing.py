"""The one definition of how an image file becomes model input.

Training, export calibration and the device all call :func:`prepare_file` (the DICOM reader
hands its decoded pixels to :func:`prepare_array`), so a model never sees pixels prepared any
other way than the ones it was trained on. Both return a :class:`ModelInput`, the one type for a
decoded film in this package. The steps, in order:

1. decode with Pillow, refusing decompression bombs before any pixel is allocated;
2. apply the EXIF orientation (phones and some viewers store rotated JPEGs);
3. convert to single-channel grayscale as float32, keeping 16-bit and 12-bit depth;
4. resize to a square ``size x size`` (aspect ratio is not kept, like the training set);
5. normalise intensity (see :data:`NORMALIZATIONS`) and round to uint8.

The device also needs two things this one decode can give and the model input cannot: how
colourful the decoded image was (the input gate refuses colour photos, and grayscale conversion
erases the evidence) and, for a heatmap, the film at its own aspect ratio. :class:`ModelInput`
carries them beside the model input; neither changes the pixels a model sees, so they need no new
:data:`PREPROCESSING_VERSION`.

Errors are :class:`ImageError` with a short reason a person can act on; callers add the path.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Bumped whenever any step below changes what a model sees; stored in every model's contract.
PREPROCESSING_VERSION = 1

#: The smallest side we accept. Below this a chest film carries no usable detail.
MIN_SIDE = 64

#: Refuse images above this many pixels before decoding them (a 16k x 16k PNG is 256 MP and
#: would take gigabytes of RAM on a 2 GB device). Real radiographs are at most ~4.3k x 4.3k.
MAX_PIXELS = 40_000_000

#: Intensity normalisations a model can be trained with; the contract says which one it uses.
#: ``none``: 8-bit pixels as stored (16-bit scaled by its bit depth).
#: ``percentile``: stretch the 0.5th..99.5th percentile to 0..255, which removes exposure and
#: window differences between X-ray units and treats 8/12/16-bit images alike.
#: ``equalize``: histogram equalisation (each pixel becomes its intensity rank), which removes
#: any monotonic difference in exposure, gamma or detector response between X-ray units.
#: ``central-percentile``: the same stretch, with the percentiles read from the central half of
#: the film (:data:`CENTRAL_WINDOW`) and applied to all of it. Why: a film's corners and borders
#: hold what is not the child: burnt-in laterality letters, text, black padding, collimation.
#: A large white "R" covers more than 0.5% of the pixels, so with ``percentile`` it becomes the
#: 99.5th percentile and compresses the contrast of the whole film; that moved healthy films'
#: logits by +0.24 (the same letter pasted after the stretch: +0.04), and black padding moves
#: the low end the same way. The central half holds the mediastinum and the inner lungs in any
#: framing the device accepts.
NORMALIZATIONS = ("none", "percentile", "equalize", "central-percentile")

#: ``central-percentile`` reads its percentiles from the rows and columns between these shares
#: of the side (the central half each way, a quarter of the area): the corner markers of real
#: films (a margin of up to 8% plus a letter up to ~20% of the side) stay outside it.
CENTRAL_WINDOW = (0.25, 0.75)

SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png")

#: What Pillow may open, by content (whatever a file is named): JPEG (including MPO, how some
#: phones store JPEGs, which Pillow's JPEG opener returns) and PNG. GIF, TIFF, BMP, WebP and the rest are refused everywhere, named or found in a
#: folder, with the same message: X-ray units and PACS export JPEG, PNG or DICOM, and every other
#: decoder is attack surface the device does not need.
PILLOW_FORMATS = ("JPEG", "PNG")
ACCEPTED = "JPEG, PNG or DICOM"

#: The PNG text chunk every heatmap pneumoscan writes carries (:mod:`edge_app.heatmap`): such a
#: file is refused as input, so a heatmap copied or written next to films is never screened as
#: one. (Checked where the file is opened anyway: it costs no extra read, unlike a name rule,
#: and survives renaming.)
HEATMAP_MARKER = ("pneumoscan", "heatmap")


def is_image_name(name: str | Path) -> bool:
    """True for names ending in a supported image suffix, in any case (``X.JPEG``): the one test
    the device makes before handing a file to Pillow rather than looking for DICOM."""
    return str(name).lower().endswith(SUPPORTED_SUFFIXES)


Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """An input that cannot be turned into model input; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class ModelInput:
    """One decoded film: the model input plus what was measured on the way there, from a single
    decode. Every reader (PNG/JPEG here, DICOM in :mod:`edge_app.dicom`) returns this type.

    ``pixels``: ``(size, size)`` uint8, exactly what the model sees. ``colourfulness``:
    :func:`measure_colourfulness` of the decoded colours, 0.0 for a grayscale source (the input
    gate needs it). ``display``: the film as uint8 at its own aspect ratio (for a heatmap
    overlay), or None when not asked for. ``kind``: ``"image"`` or ``"dicom"``. ``info``: the
    DICOM header fields for the result record (:func:`edge_app.dicom.dicom_info`), empty for
    PNG/JPEG.
    """

    pixels: np.ndarray
    colourfulness: float = 0.0
    display: np.ndarray | None = None
    kind: str = "image"
    info: dict[str, Any] = field(default_factory=dict)
    #: (height, width) of the film as decoded and oriented, before the square resize (the gate
    #: refuses extreme aspect ratios, which the square model input no longer shows).
    shape: tuple[int, int] | None = None
    #: The same film as the input gate reads it, when that differs from ``pixels`` (see
    #: :meth:`PreprocessSpec.gate_spec`); None when the gate reads ``pixels`` themselves.
    gate_pixels: np.ndarray | None = None

    @property
    def gate_view(self) -> np.ndarray:
        """The ``(size, size)`` uint8 film the input gate's statistics and orientation read."""
        return self.pixels if self.gate_pixels is None else self.gate_pixels


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects; stored in its contract and rebuilt from it on the device."""

    image_size: int
    normalization: str = "percentile"
    version: int = PREPROCESSING_VERSION

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; one of {NORMALIZATIONS}")
        if not 16 <= int(self.image_size) <= 1024:
            raise ValueError(f"image_size must be 16..1024, got {self.image_size}")

    @property
    def id(self) -> str:
        """A short identifier that changes whenever the pixels a model sees would change."""
        return f"gray-{self.image_size}px-{self.normalization}-v{self.version}"

    def to_dict(self) -> dict:
        return {**asdict(self), "id": self.id}

    def gate_spec(self) -> "PreprocessSpec":
        """The preprocessing whose pixels the input gate reads for a model of this one.

        The gate's features and ``orientation.json`` describe the whole film's stretch: padding
        and its content box, brightness of the borders, the shoulders' asymmetry. A
        ``central-percentile`` input clips what lies outside the film's central range, so its
        gate reads the same resized film with the plain ``percentile`` stretch (measured: with
        its own pixels 7 of 5216 upright training films were refused, 0 with these). The other
        normalisations are read as the model sees them, as their gate ranges were fitted.
        """
        if self.normalization == "central-percentile":
            return PreprocessSpec(self.image_size, "percentile", self.version)
        return self

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessSpec":
        return cls(
            image_size=int(data["image_size"]),
            normalization=str(data.get("normalization", "percentile")),
            version=int(data.get("version", PREPROCESSING_VERSION)),
        )


def open_image(path: str | Path) -> Image.Image:
    """Open ``path`` and check it is a decodable image of sane size, without decoding it all."""
    handle = open_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle, formats=PILLOW_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        handle.close()
        raise ImageError(f"image too large (limit {MAX_PIXELS // 1_000_000} megapixels)") from None
    except UnidentifiedImageError:
        handle.close()
        raise ImageError(f"not an image this device reads (formats accepted: {ACCEPTED})") from None
    except OSError as exc:
        handle.close()
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    except BaseException:
        handle.close()
        raise
    try:
        if image.format == "PNG" and image.info.get(HEATMAP_MARKER[0]) == HEATMAP_MARKER[1]:
            raise ImageError("a heatmap pneumoscan wrote, not an X-ray")
        check_dimensions(image.size)
    except ImageError:
        image.close()  # a batch of refused images must not leak one file handle each
        raise
    return image


def _not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` must not be read as an image, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not an image"
    if stat.S_ISFIFO(mode):
        return "not a regular file (a named pipe)"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a regular file (a device)"
    return "not a regular file"


def check_file(path: str | Path, *, allow_empty: bool = False) -> None:
    """Refuse, before any decoder sees it, a path that is missing, not a regular file (a folder,
    a named pipe, a socket, a device) or empty. Only ``stat`` is called: nothing is opened."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    reason = _not_regular(st.st_mode)
    if reason is not None:
        raise ImageError(reason)
    if st.st_size == 0 and not allow_empty:
        raise ImageError("empty file")


def open_regular(path: str | Path, *, allow_empty: bool = False):
    """``path`` opened for binary reading, only if it is a non-empty regular file; else
    :class:`ImageError` with the reason. The one way this package opens an input file.

    Opening a named pipe blocks until someone writes to it, and reading a device may never end,
    so the file is checked with ``stat`` first and then opened with ``O_NONBLOCK`` and checked
    again on the open descriptor: a pipe swapped in between the two is refused, not waited on.
    (``O_NONBLOCK`` changes nothing for a regular file's reads.)
    """
    check_file(path, allow_empty=allow_empty)

    def opener(name, _flags):
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        reason = _not_regular(os.fstat(fd).st_mode)
        if reason is not None:
            os.close(fd)
            raise ImageError(reason)
        return fd

    try:
        # ``opener``: a real file object named by its path (Pillow and pydicom reopen by name)
        return open(path, "rb", opener=opener)
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None


def check_dimensions(size: tuple[int, int]) -> None:
    """Refuse images too small to read or too large to decode safely (sizes from the header)."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"image too large ({width}x{height}, limit {MAX_PIXELS // 1_000_000} megapixels)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"image too small ({width}x{height}, minimum {MIN_SIDE} px a side)")


#: Pillow modes that carry colour (after transparency is composited away).
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _decode(image: Image.Image) -> tuple[np.ndarray, float, Image.Image | None]:
    """Decode ``image`` to a 2-D float32 array, its full-scale value, and the decoded image as
    RGB when it has colour (else None).

    Colour and palette images go through ITU-R 601 luma; transparent pixels are composited on
    black (film background). 16-bit images keep their depth; a 16-bit container whose largest
    value fits in 12 bits is treated as 12-bit, which is how most detectors store their data.
    """
    try:
        image = ImageOps.exif_transpose(image)
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            array = np.asarray(image, dtype=np.float32)
            peak = float(array.max(initial=0.0))
            full_scale = 4095.0 if peak <= 4095 else 65535.0
            if mode == "I" and peak > 65535:
                full_scale = peak
            return array, full_scale, None
        if mode == "F":
            array = np.asarray(image, dtype=np.float32)
            return array, max(float(array.max(initial=0.0)), 1.0), None
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, rgba)
            if mode == "LA":
                image = image.convert("L")
        gray = image.convert("L")
        colour = None
        if image.mode in _COLOUR_MODES:
            colour = image if image.mode == "RGB" else image.convert("RGB")
        return np.asarray(gray, dtype=np.float32), 255.0, colour
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"truncated or corrupt image ({reason})") from None


def colourfulness(rgb: np.ndarray, full_scale: float = 255.0) -> float:
    """Hasler & Suesstrunk's colourfulness ``M`` of an ``(h, w, 3)`` image, in 8-bit units.

    ``M = hypot(std(rg), std(yb)) + 0.3 * hypot(mean(rg), mean(yb))`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B``: 0 for any gray image however it is stored, about 15 for a
    "slightly colourful" photo and 30-110 for ordinary ones (Hasler & Suesstrunk 2003). The input
    gate compares it with the range the training films had, which it cannot see after grayscale.
    """
    x = np.asarray(rgb, dtype=np.float64)[..., :3] * (255.0 / full_scale)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


#: Colourfulness is measured on a copy this size: enough pixels for a steady value, and
#: independent of the file's and the model's resolution (export and device measure alike).
COLOUR_SIDE = 64


def measure_colourfulness(rgb: Image.Image | np.ndarray, full_scale: float = 255.0) -> float:
    """:func:`colourfulness` of an RGB image or ``(h, w, 3)`` array, on a ``COLOUR_SIDE`` square
    copy (a box reduction first, so a large photo costs ~0.1 ms, not a full-size resize)."""
    if isinstance(rgb, Image.Image):
        factor = max(1, min(rgb.size) // COLOUR_SIDE)
        small = rgb.reduce(factor) if factor > 1 else rgb
        return colourfulness(np.asarray(small.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BILINEAR)))
    channels = [resize_square(np.asarray(rgb[..., c], dtype=np.float32), COLOUR_SIDE) for c in range(3)]
    return colourfulness(np.stack(channels, axis=-1), full_scale)


def resize_square(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a float32 image to ``size x size`` with Pillow's antialiased bilinear filter."""
    if gray.shape == (size, size):
        return gray.astype(np.float32, copy=False)
    resized = Image.fromarray(gray.astype(np.float32, copy=False), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)


def central(gray: np.ndarray) -> np.ndarray:
    """The :data:`CENTRAL_WINDOW` part of a 2-D image (the region ``central-percentile`` reads)."""
    h, w = gray.shape[:2]
    lo, hi = CENTRAL_WINDOW
    return gray[int(round(lo * h)) : int(round(hi * h)), int(round(lo * w)) : int(round(hi * w))]


def normalize_intensity(gray: np.ndarray, full_scale: float, normalization: str) -> np.ndarray:
    """Map a float image to uint8 according to ``normalization`` (see :data:`NORMALIZATIONS`)."""
    if normalization in ("percentile", "central-percentile"):
        low, high = np.percentile(central(gray) if normalization == "central-percentile" else gray, (0.5, 99.5))
        if high - low < 1e-6 * max(full_scale, 1.0):
            # A uniform image has no contrast to stretch; keep its level rather than invent one.
            scaled = gray * (255.0 / full_scale)
        else:
            scaled = (gray - low) * (255.0 / (high - low))
    elif normalization == "equalize":
        values, inverse, counts = np.unique(gray, return_inverse=True, return_counts=True)
        # each intensity maps to the middle of its step in the cumulative histogram
        middle = (np.cumsum(counts) - counts / 2.0) / gray.size
        scaled = middle[inverse.reshape(gray.shape)] * 255.0
    elif normalization == "none":
        scaled = gray * (255.0 / full_scale)
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def display_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled down (never up) so the longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _prepared(
    gray: np.ndarray,
    full_scale: float,
    spec: PreprocessSpec,
    colour: float,
    display_side: int | None,
    original: tuple[int, int] | None = None,
) -> ModelInput:
    square = resize_square(gray, spec.image_size)
    pixels = normalize_intensity(square, full_scale, spec.normalization)
    gate_spec = spec.gate_spec()
    gate_pixels = None if gate_spec == spec else normalize_intensity(square, full_scale, gate_spec.normalization)
    display = None
    if display_side is not None:
        # Sized from the file's own dimensions, so a JPEG decoded at reduced scale gives the
        # same size as the same film stored as PNG (just less sharp).
        height, width = display_shape(*(original or gray.shape), display_side)
        resized = Image.fromarray(gray.astype(np.float32, copy=False), mode="F").resize(
            (width, height), Image.Resampling.BILINEAR
        )
        display = normalize_intensity(np.asarray(resized, np.float32), full_scale, spec.normalization)
    return ModelInput(
        pixels, colour, display, shape=tuple(int(v) for v in (original or gray.shape)), gate_pixels=gate_pixels
    )


#: Early reduction keeps at least this many times the model's resolution on the shorter side:
#: enough that the antialiased resize which follows sees nearly what it would see at full size.
REDUCE_MARGIN = 8

#: Rows reduced at a time (times the factor): the only full-resolution copy is the decoded image.
_STRIPE_BLOCKS = 32


def reduction_factor(size: tuple[int, int], spec: PreprocessSpec, display_side: int | None = None) -> int:
    """The whole factor a ``size`` image can be shrunk by right after decoding and still keep at
    least :data:`REDUCE_MARGIN` x the model's resolution on its shorter side (and, for a heatmap,
    ``display_side`` on its longer side)."""
    width, height = size
    factor = min(width, height) // (REDUCE_MARGIN * spec.image_size)
    if display_side is not None:
        factor = min(factor, max(width, height) // display_side)
    return max(1, factor)


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``image`` shrunk by box averages of ``factor x factor`` pixels right after decoding, so
    the conversions that follow (alpha, grayscale, float32: ~25 bytes a pixel together) run on a
    small image. It is done in horizontal stripes: Pillow's own ``reduce`` first copies a whole
    RGBA image to premultiplied alpha, which would double the peak. A 40 MP RGBA PNG then needs
    little more than its decoded pixels (160 MB) instead of 1 GB. Images too small for a factor
    of 2 are not touched; how little this changes the model input is measured by
    ``benchmarks/memory.py``."""
    if factor <= 1:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    image.load()
    width, height = image.size
    sixteen = image.mode.startswith("I;16")  # Pillow cannot reduce these: numpy, same depth
    out = Image.new("I" if sixteen else image.mode, (-(-width // factor), -(-height // factor)))
    step = factor * _STRIPE_BLOCKS
    for top in range(0, height, step):
        stripe = image.crop((0, top, width, min(top + step, height)))
        if sixteen:
            stripe = Image.fromarray(_block_mean(np.asarray(stripe), factor), mode="I")
        else:
            stripe = stripe.reduce(factor)
        out.paste(stripe, (0, top // factor))
    return out


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``factor x factor`` blocks (partial blocks at the edges averaged as they are),
    rounded to int32, as Pillow's ``reduce`` does for 8-bit images."""
    height, width = array.shape
    padded_h, padded_w = -(-height // factor) * factor, -(-width // factor) * factor
    values = np.zeros((padded_h, padded_w), np.float64)
    values[:height, :width] = array
    present = np.zeros((padded_h, padded_w), np.float64)
    present[:height, :width] = 1.0
    sums = values.reshape(padded_h // factor, factor, padded_w // factor, factor).sum(axis=(1, 3))
    counts = present.reshape(padded_h // factor, factor, padded_w // factor, factor).sum(axis=(1, 3))
    return np.rint(sums / counts).astype(np.int32)


def _prepare_image(image: Image.Image, spec: PreprocessSpec, display_side: int | None = None) -> ModelInput:
    """Model input and measurements for an opened image (see :class:`ModelInput`)."""
    check_dimensions(image.size)
    original = (image.height, image.width)
    if image.format in ("JPEG", "MPO") and image.mode in ("L", "RGB", "CMYK", "YCbCr"):
        # Let libjpeg decode large films at a reduced scale (DCT-domain, high quality) while
        # keeping at least 2x the model's resolution: a 2000 px film decodes ~8x faster.
        image.draft(image.mode, (2 * spec.image_size, 2 * spec.image_size))
    else:
        try:
            image = _reduce(image, reduction_factor(image.size, spec, display_side))
        except (OSError, SyntaxError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ImageError(f"truncated or corrupt image ({reason})") from None
    gray, full_scale, colour = _decode(image)
    measured = 0.0 if colour is None else measure_colourfulness(colour)
    if (gray.shape[0] > gray.shape[1]) != (original[0] > original[1]):
        original = original[::-1]  # EXIF orientation turned the film
    return _prepared(gray, full_scale, spec, measured, display_side, original)


def decode_gray(path: str | Path) -> tuple[np.ndarray, float]:
    """The PNG/JPEG at ``path`` as the device decodes it (grayscale float32 at its own size, with
    its full-scale value), before resizing and normalisation: for training's shift validation,
    which changes the original-size film and then runs :func:`prepare_array` on it."""
    image = open_image(path)
    try:
        gray, full_scale, _ = _decode(image)
    finally:
        image.close()
    return gray, full_scale


def prepare_file(path: str | Path, spec: PreprocessSpec, display_side: int | None = None) -> ModelInput:
    """Read the PNG/JPEG at ``path`` once into a :class:`ModelInput`, or raise :class:`ImageError`
    with the reason. ``.pixels`` is the model input.

    ``display_side``: also return the film at its own aspect ratio, longer side at most this.
    """
    image = open_image(path)
    try:
        return _prepare_image(image, spec, display_side)
    finally:
        image.close()


def prepare_array(
    gray: np.ndarray,
    full_scale: float,
    spec: PreprocessSpec,
    colour: float = 0.0,
    display_side: int | None = None,
) -> ModelInput:
    """:class:`ModelInput` from an already-decoded grayscale array (the DICOM path uses this);
    ``colour`` is the :func:`colourfulness` the caller measured before converting to gray."""
    if gray.ndim != 2:
        raise ImageError(f"expected a single grayscale frame, got shape {gray.shape}")
    check_dimensions((gray.shape[1], gray.shape[0]))
    return _prepared(gray.astype(np.float32, copy=False), full_scale, spec, colour, display_side)
