"""Would a canonical thorax crop found by image analysis remove the framing cue, or add a new one?

    python scripts/thorax_crop_probe.py [DATA_ROOT]     (default ../shared/data/chest_xray)

Issue 11 suggests "a canonical framing step in preprocessing (crop to the thorax found in the
image) if it proves robust". Without lung masks to learn from (the Kermany set has none), the
thorax has to be found by hand-made image analysis, and such a finder is only usable if it works
*equally* on both classes: if it fails more often on one class, whether a film was cropped becomes
a label cue of its own, the very thing the crop was meant to remove.

The finder probed here is the classical one: on a 64 x 64 copy of the film, pixels darker than
Otsu's level are air; air connected to the border (morphological reconstruction) is outside the
body, the rest is lung; the lungs' bounding box is the crop, and a film with lungs under 5% of the
area has no box (it would be left uncropped). The script prints, for each class folder of the
training set, how often no box is found and the median box area. Consolidated lungs are bright, so
the finder is expected to fail more often on pneumonia: the question is how much more.

Otsu's level and the border fill are written here in numpy rather than taken from scikit-image or
scipy.ndimage because the finder was probed as a device preprocessing step, and the device
installs numpy and Pillow only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from edge_app.preprocessing import is_image_name, resize_square

SIDE = 64
MIN_LUNG_FRACTION = 0.05


def otsu_level(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1]: the level that best separates two groups."""
    hist, edges = np.histogram(np.clip(values, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    weight, mean = np.cumsum(p), np.cumsum(p * np.arange(bins))
    between = (mean[-1] * weight - mean) ** 2 / np.maximum(weight * (1.0 - weight), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def outside_air(dark: np.ndarray) -> np.ndarray:
    """The dark pixels connected to the image border (grown 4-connected until nothing changes)."""
    reach = np.zeros_like(dark)
    for edge in ((0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)):
        reach[edge] = dark[edge]
    while True:
        grown = reach.copy()
        grown[1:] |= reach[:-1]
        grown[:-1] |= reach[1:]
        grown[:, 1:] |= reach[:, :-1]
        grown[:, :-1] |= reach[:, 1:]
        grown &= dark
        if np.array_equal(grown, reach):
            return reach
        reach = grown


def lung_box(gray: np.ndarray) -> tuple[float, float, float, float] | None:
    """(top, bottom, left, right) of the lung fields as fractions of the film, or None."""
    small = resize_square(gray.astype(np.float32), SIDE)
    low, high = np.percentile(small, (1, 99))
    scaled = (small - low) / max(high - low, 1e-6)
    dark = scaled < otsu_level(scaled)
    lungs = dark & ~outside_air(dark)
    if lungs.mean() < MIN_LUNG_FRACTION:
        return None
    rows, cols = np.flatnonzero(lungs.sum(1) >= 2), np.flatnonzero(lungs.sum(0) >= 2)
    return rows[0] / SIDE, (rows[-1] + 1) / SIDE, cols[0] / SIDE, (cols[-1] + 1) / SIDE


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "../shared/data/chest_xray") / "train"
    if not root.is_dir():
        print(f"error: {root} is not a folder", file=sys.stderr)
        return 2
    print("| class | films | no box found | median box area (IQR) |")
    print("|---|---|---|---|")
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        boxes = [lung_box(np.asarray(Image.open(f).convert("L"), np.float32))
                 for f in sorted(folder.iterdir()) if is_image_name(f)]
        areas = [(b[1] - b[0]) * (b[3] - b[2]) for b in boxes if b is not None]
        missing = sum(b is None for b in boxes)
        q1, median, q3 = np.percentile(areas, (25, 50, 75)) if areas else (np.nan,) * 3
        print(f"| {folder.name} | {len(boxes)} | {missing} ({missing / max(len(boxes), 1):.1%}) "
              f"| {median:.3f} ({q1:.3f}-{q3:.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
