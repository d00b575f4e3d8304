"""Int8 models side by side under laterality letters drawn in fonts they never saw in training.

    python scripts/font_shift.py RUN_DIR MODEL.tflite [MODEL.tflite ...]

Training pastes letters and text on both classes (``train/markers.py``) and the shift validation
measures the invariance that buys (``letter_R_tl_15`` and friends in ``train/shift.py``), but both
draw with Pillow's one bundled font, so the shift validation measures invariance to glyphs the
model has seen. Real lead markers are other shapes (mostly bold sans-serif letters, often in a
box), and a model that learnt "this letter shape is harmless" rather than "letters are harmless"
would show it only on new shapes. Each validation film of ``RUN_DIR``'s split is changed as listed,
on the original-size film, then goes through the device's preprocessing and each model at its own
threshold; the flip rate is the share of films whose decision differs from the clean film's.

The fonts are the bold faces of the DejaVu and Liberation families Debian installs
(``fonts-dejavu-core``, ``fonts-liberation``), fixed before any model was scored; a font that is
not on the machine is left out with a line saying so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier
from edge_app.preprocessing import prepare_array
from export.run import locate_run, split_samples
from train.markers import paste, render, resized
from train.metrics import binary_metrics
from train.shift import PERTURBATIONS, decode_originals

FONTS = {
    "DejaVu Sans Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "Liberation Sans Bold": "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "DejaVu Serif Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "Liberation Mono Bold": "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
}
#: The font the boxed and crop rows use: Arial-like, the nearest to a typical lead marker.
MARKER_LIKE = "Liberation Sans Bold"


def lettered(font_file: str | None, style: str = "plain", height: float = 0.15):
    """The shift validation's large top-left "R" (``train.shift.letter``), in ``font_file``."""

    def change(gray: np.ndarray, full_scale: float) -> np.ndarray:
        mask = resized(render("R", style, stroke=1, font_file=font_file), height * gray.shape[0])
        return paste(gray, mask, "tl", full_scale)

    return change


def conditions() -> dict:
    found = {name: path for name, path in FONTS.items() if Path(path).exists()}
    for name in FONTS.keys() - found.keys():
        print(f"left out: {name} ({FONTS[name]} is not on this machine)")
    rows = {"large R, bundled font (seen)": lettered(None)}
    rows.update({f"large R, {name}": lettered(path) for name, path in found.items()})
    if MARKER_LIKE in found:
        marker_like = found[MARKER_LIKE]
        rows[f"boxed R 10%, {MARKER_LIKE}"] = lettered(marker_like, "boxed", 0.10)
        crop = PERTURBATIONS["crop_5"][1]
        big = lettered(marker_like)
        rows[f"crop 5% + large R, {MARKER_LIKE}"] = lambda g, fs: big(np.clip(crop(g, fs), 0.0, fs), fs)
    return rows


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    samples = split_samples(locate_run(argv[0]), "validation")
    labels = np.array([s.label for s in samples])
    films = [(f.gray.astype(np.float32), f.full_scale) for f in decode_originals([s.path for s in samples])]
    rows = conditions()
    print(f"{len(films)} validation films ({int((labels == 0).sum())} NORMAL); each model at its own threshold")
    for path in argv[1:]:
        classifier = Classifier(path)
        spec, threshold = classifier.preprocess, classifier.contract.threshold

        def scores(change=None):
            return np.array(
                [
                    classifier.classify(prepare_array(g if change is None else change(g, fs), fs, spec).pixels)
                    for g, fs in films
                ]
            )

        clean = scores()
        m = binary_metrics(labels, clean, threshold)
        print(f"\n{classifier.contract.version} ({spec.id}, threshold {threshold:.3f})")
        print("| change | specificity | sensitivity | AUC | flip rate | healthy films flipped to pneumonia |")
        print("|---|---|---|---|---|---|")
        print(f"| none | {m['specificity']:.3f} | {m['sensitivity']:.3f} | {m['auc']:.4f} | – | – |")
        for name, change in rows.items():
            changed = scores(change)
            m = binary_metrics(labels, changed, threshold)
            flips = (changed >= threshold) != (clean >= threshold)
            up = int(((changed >= threshold) & (clean < threshold) & (labels == 0)).sum())
            print(
                f"| {name} | {m['specificity']:.3f} | {m['sensitivity']:.3f} | {m['auc']:.4f} "
                f"| {flips.mean():.3f} | {up} of {int((labels == 0).sum())} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
