"""Int8 models side by side under *combined* shift perturbations: tight framing and a large
laterality letter at once.

    python scripts/combined_shift.py RUN_DIR MODEL.tflite [MODEL.tflite ...]

The shift validation (``train/shift.py``) changes one thing at a time. The healthy test-split
films the previous release called sick were described (issue 11) as tightly framed *and* mostly
carrying a large "R" in the top-left corner: two changes at once, and a crop makes a letter a
larger share of the film. So each validation film of ``RUN_DIR``'s split (any run trained on the
same split) is changed by the listed perturbations in turn, on the original-size film, then goes
through the device's preprocessing and each model at its own threshold. The combinations were
fixed from that description before any model was scored on them.
"""

from __future__ import annotations

import sys

import numpy as np

from edge_app.classifier import Classifier
from edge_app.preprocessing import prepare_array
from export.run import locate_run, split_samples
from train.metrics import binary_metrics
from train.shift import PERTURBATIONS, decode_originals

COMBINATIONS = {
    "clean": (),
    "crop 5% + large R": ("crop_5", "letter_R_tl_15"),
    "crop 10% + large R": ("crop_10", "letter_R_tl_15"),
    "crop 5% + large R + text": ("crop_5", "letter_R_tl_15", "text_corners"),
    "aspect 1.25 + large R": ("aspect_1.25", "letter_R_tl_15"),
}


def changed(gray: np.ndarray, full_scale: float, steps: tuple[str, ...]) -> np.ndarray:
    for step in steps:
        gray = np.clip(PERTURBATIONS[step][1](gray, full_scale), 0.0, full_scale)
    return gray


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    samples = split_samples(locate_run(argv[0]), "validation")
    labels = np.array([s.label for s in samples])
    films = [(f.gray.astype(np.float32), f.full_scale) for f in decode_originals([s.path for s in samples])]
    print(f"{len(films)} validation films ({int((labels == 0).sum())} NORMAL); each model at its own threshold")
    print("| model | " + " | ".join(COMBINATIONS) + " |")
    print("|---|" + "---|" * len(COMBINATIONS))
    for path in argv[1:]:
        classifier = Classifier(path)
        spec, threshold = classifier.preprocess, classifier.contract.threshold
        cells = []
        for steps in COMBINATIONS.values():
            probabilities = np.array(
                [classifier.classify(prepare_array(changed(g, fs, steps), fs, spec).pixels) for g, fs in films]
            )
            m = binary_metrics(labels, probabilities, threshold)
            cells.append(f"{m['specificity']:.3f} / {m['sensitivity']:.3f} / {m['auc']:.4f}")
        print(f"| {classifier.contract.version} ({spec.id}, {threshold:.3f}) | " + " | ".join(cells) + " |")
    print("cells: specificity / sensitivity / AUC")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
