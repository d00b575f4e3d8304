"""Laterality letters and annotation text as they appear burnt into chest films.

Real films carry a lead "R" or "L" (often large, often in a box) and a line of text (unit,
"PORTABLE", "AP", a date) in a corner. In the Kermany training folder their size and place differ
between the classes' sources, so a CNN can learn "large R top-left = pneumonia". Both the training
augmentation (:mod:`train.pipeline`, pasted on *both* classes) and the harder validation
(:mod:`train.shift`) paste these glyphs; they are rendered here once, with Pillow, as float masks
in 0..1 trimmed to their ink, so a caller only scales and places them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Letters drawn as laterality markers.
LETTERS = ("R", "L")
#: Text lines like those in film corners (no real identifiers).
TEXT_LINES = ("PORTABLE AP", "SUPINE", "AP 12/03", "ERECT PA", "RM 4 CR2", "L SIDE UP", "09:41 kV70")
#: Font size glyphs are rendered at; callers scale the masks to the size they need.
RENDER_SIZE = 48
#: Marker styles: the bare letter, the letter inside a box outline, the letter cut out of a filled box.
STYLES = ("plain", "boxed", "inverted")


def _font(size: int, font: str | None = None):
    # Pillow's bundled scalable font: the same glyphs on every machine, no system fonts needed.
    # ``font`` (a TrueType file) exists for probes that ask whether a model's invariance holds for
    # glyph shapes it never saw in training (scripts/font_shift.py); training never passes one.
    if font is not None:
        return ImageFont.truetype(font, size=size)
    return ImageFont.load_default(size=size)


def _trim(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.max(axis=1) > 0.05), np.flatnonzero(mask.max(axis=0) > 0.05)
    if not len(rows):
        return mask
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def render(
    text: str, style: str = "plain", stroke: int = 0, size: int = RENDER_SIZE, font_file: str | None = None
) -> np.ndarray:
    """A float32 ink mask (1 = ink) of ``text`` in ``style``, trimmed to the ink; in Pillow's
    bundled font unless ``font_file`` names a TrueType file."""
    if style not in STYLES:
        raise ValueError(f"unknown marker style {style!r}; one of {STYLES}")
    font = _font(size, font_file)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    pad = max(2, size // 6) if style != "plain" else 1
    width, height = right - left + 2 * pad + 2, bottom - top + 2 * pad + 2
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    origin = (pad + 1 - left, pad + 1 - top)
    line = max(1, size // 12)
    if style == "boxed":
        draw.rectangle([0, 0, width - 1, height - 1], outline=255, width=line)
        draw.text(origin, text, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    elif style == "inverted":
        draw.rectangle([0, 0, width - 1, height - 1], fill=255)
        draw.text(origin, text, fill=0, font=font, stroke_width=stroke, stroke_fill=0)
    else:
        draw.text(origin, text, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    return _trim(np.asarray(canvas, dtype=np.float32) / 255.0)


@lru_cache(maxsize=None)
def glyph_bank(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """All masks of ``kind`` ("letter" or "text") on one zero canvas (top-left aligned), for the
    tf.data pipeline: returns (masks (k, h, w) float32, sizes (k, 2) int32 as (height, width))."""
    if kind == "letter":
        masks = [render(t, s, stroke) for t in LETTERS for s in STYLES for stroke in (0, 2)]
    elif kind == "text":
        masks = [render(t, "plain", stroke, size=RENDER_SIZE // 2) for t in TEXT_LINES for stroke in (0, 1)]
    else:
        raise ValueError(f"unknown glyph kind {kind!r}")
    height = max(m.shape[0] for m in masks)
    width = max(m.shape[1] for m in masks)
    bank = np.zeros((len(masks), height, width), np.float32)
    for i, m in enumerate(masks):
        bank[i, : m.shape[0], : m.shape[1]] = m
    sizes = np.array([m.shape for m in masks], dtype=np.int32)
    return bank, sizes


def resized(mask: np.ndarray, height: int) -> np.ndarray:
    """``mask`` scaled (aspect kept) to ``height`` pixels, antialiased."""
    height = max(3, int(round(height)))
    width = max(1, int(round(mask.shape[1] * height / mask.shape[0])))
    pil = Image.fromarray(mask.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(pil, dtype=np.float32), 0.0, 1.0)


def paste(
    film: np.ndarray, mask: np.ndarray, corner: str, value: float, margin: float = 0.04
) -> np.ndarray:
    """``film`` (2-D float) with ``mask`` blended in at ``corner`` ("tl", "tr", "bl", "br") in
    intensity ``value``, ``margin`` (share of the side) from the edges."""
    out = film.astype(np.float32, copy=True)
    h, w = mask.shape
    rows, cols = out.shape
    dy, dx = int(round(margin * rows)), int(round(margin * cols))
    top = dy if corner[0] == "t" else rows - dy - h
    left = dx if corner[1] == "l" else cols - dx - w
    top, left = max(0, top), max(0, left)
    h, w = min(h, rows - top), min(w, cols - left)
    region = out[top : top + h, left : left + w]
    m = mask[:h, :w]
    out[top : top + h, left : left + w] = region * (1.0 - m) + value * m
    return out
