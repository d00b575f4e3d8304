"""Where the model looked: its local logit map drawn over the film, as a PNG a clinician can open.

The map is the model's second output (``[1, h, w, 1]``, see ``export/graph.py``): the model's own
dense head applied at each cell of its last feature map, so it needs no gradients and no
TensorFlow, only the one invocation that also gives the score. Here it is stretched over the
film at the film's own aspect ratio (the model saw a square; the map's cells follow the same
squeeze) and coloured from transparent (least pneumonia-like in this image) to red and yellow
(most). The map's cells are in logit units, so how strongly it is drawn is absolute: a film whose
most suspicious cell, on its own, would fall below the decision threshold gets at most a faint
tint, and a clearly normal film none; the colours show *where*, the score says *how likely*.

Files go into the folder the user names with ``--heatmap``, which may not be an input folder or
sit beside an input file, so a later run over the same folder never mistakes a heatmap for a
film (and every heatmap carries a PNG text marker that makes the decoder refuse it as input).
Names come from the input's name plus a digest of its full path (``a/x.png`` and ``b/x.png``
differ): ``x.png-1a2b3c4d.heatmap.png``. An existing file is never replaced: a later heatmap for
the same path is named after its own content too (``x.png-1a2b3c4d-<12 hex of the PNG>.heatmap.png``),
and the very same picture already written under that name is reused, so names never run out.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from edge_app.classifier import sigmoid
from edge_app.paths import writes_into_inputs
from edge_app.preprocessing import HEATMAP_MARKER

#: The overlay's longer side, at most: enough to see lung zones and ribs on a tablet, small
#: enough to write in a few milliseconds on the device. Smaller films keep their size.
OVERLAY_MAX_SIDE = 512

#: zlib level for the PNG: at 512 px, level 1 encodes in ~14 ms and 314 KB, the default (6) in
#: ~60 ms and 286 KB (measured on the development machine; a Pi is a few times slower).
PNG_COMPRESS_LEVEL = 1

#: Opacity of the colour where the map is at its maximum; the film stays readable beneath.
MAX_ALPHA = 0.55

#: Characters kept from an input's name; anything else (spaces, accents, separators) becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")



class HeatmapError(ValueError):
    """A heatmap folder that must not be used, or a heatmap that could not be written."""


def upsample(local_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``(h, w)`` map resized bilinearly to ``(height, width)``; cell centres stay aligned."""
    image = Image.fromarray(np.asarray(local_map, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float64)


def relative_weights(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to 0..1 within the image; a flat map (nothing stands out) is all 0."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.zeros_like(values, dtype=np.float64)
    return (values - low) / (high - low)


def strength(local_map: np.ndarray, threshold: float | None) -> float:
    """How strongly to draw a map, 0..1: how far its most suspicious cell, read as a probability,
    lies above the decision ``threshold`` (1 when no threshold is given)."""
    if threshold is None:
        return 1.0
    top = float(sigmoid(np.max(local_map)))
    return float(np.clip((top - threshold) / (1.0 - threshold), 0.0, 1.0))


def overlay(film: np.ndarray, local_map: np.ndarray, threshold: float | None = None) -> Image.Image:
    """An RGB image: ``film`` (2-D uint8) with the local logit map drawn over it in transparent-
    to-red-to-yellow, the size of ``film``; ``threshold`` (P(pneumonia)) sets :func:`strength`."""
    film = np.asarray(film)
    if film.ndim != 2 or film.dtype != np.uint8:
        raise ValueError(f"overlay expects a 2-D uint8 film, got {film.dtype} {film.shape}")
    weights = relative_weights(upsample(local_map, *film.shape)) * strength(local_map, threshold)
    # A "hot" ramp: red rises first, then green (towards yellow).
    colour = np.stack(
        [np.clip(2.0 * weights, 0, 1), np.clip(2.0 * weights - 1.0, 0, 1), np.zeros_like(weights)], axis=-1
    ) * 255.0
    alpha = (MAX_ALPHA * weights)[..., None]
    gray = np.repeat(film[..., None].astype(np.float64), 3, axis=-1)
    blended = gray * (1.0 - alpha) + colour * alpha
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), mode="RGB")


def check_folder(folder: str | os.PathLike, inputs: list[str]) -> Path:
    """The heatmap folder, created if missing, or :class:`HeatmapError` if it must not be used:
    an input folder or a folder inside one, or the folder an input file lies in or one below it
    (:func:`edge_app.paths.writes_into_inputs`, real paths)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HeatmapError(f"--heatmap {folder} is a file; give a folder")
    reason = writes_into_inputs(folder, inputs, beside_files=True)
    if reason is not None:
        raise HeatmapError(f"--heatmap {folder} {reason}; heatmaps must go elsewhere")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HeatmapError(f"--heatmap {folder}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HeatmapError(f"--heatmap {folder}: folder is not writable")
    return folder


def base_name(source: str | os.PathLike) -> str:
    """``<input name>-<8 hex of its full path>``, safe on any file system."""
    source = os.fspath(source)
    digest = hashlib.sha256(os.path.realpath(source).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    stem = Path(source).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    stem = _UNSAFE.sub("_", stem).strip("._") or "image"
    return f"{stem[:80]}-{digest}"


class HeatmapWriter:
    """Writes overlays into one folder (checked with :func:`check_folder` by the caller)."""

    def __init__(self, folder: str | os.PathLike, max_side: int = OVERLAY_MAX_SIDE):
        self.folder = Path(folder)
        self.max_side = int(max_side)

    def write(
        self, source: str | os.PathLike, film: np.ndarray, local_map: np.ndarray, threshold: float | None = None
    ) -> Path:
        """Write the overlay for input ``source`` and return its path; never replaces a file.

        Each name is created exclusively (``O_EXCL``), so a name taken by an earlier run or by
        another process at the same moment is skipped, not overwritten; this also works on the
        FAT-formatted USB sticks clinics carry, which cannot hard-link a temporary file into place.
        """
        buffer = io.BytesIO()
        marker = PngImagePlugin.PngInfo()
        marker.add_text(*HEATMAP_MARKER)  # refused as input: never screened as a film later
        overlay(film, local_map, threshold).save(
            buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, pnginfo=marker
        )
        data = buffer.getvalue()
        base = base_name(source)
        content = hashlib.sha256(data).hexdigest()[:12]
        candidates = itertools.chain(
            [f"{base}.heatmap.png", f"{base}-{content}.heatmap.png"],
            (f"{base}-{content}-{n}.heatmap.png" for n in itertools.count(2)),
        )
        for name in candidates:
            target = self.folder / name
            try:
                handle = open(target, "xb")
            except FileExistsError:
                if content in name and _same_bytes(target, data):
                    return target  # this very picture is there already (a re-run)
                continue
            except OSError as exc:
                raise HeatmapError(f"cannot write heatmap {target}: {exc.strerror or exc}") from None
            try:
                with handle:
                    handle.write(data)
            except OSError as exc:
                target.unlink(missing_ok=True)  # ours, half-written: never leave it
                raise HeatmapError(f"cannot write heatmap {target}: {exc.strerror or exc}") from None
            return target
        raise AssertionError("unreachable: the names above never run out")


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
