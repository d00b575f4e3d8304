"""Where does a model's response to a large laterality letter come from? One int8 model, the
healthy (or sick) films of a run's validation split, the letter varied one property at a time.

    python scripts/marker_probe.py MODEL.tflite RUN_DIR [LABEL]     (LABEL 0 = NORMAL, default)

The large white "R" pasted top-left (``letter_R_tl_15`` of ``train/shift.py``) is the worst
shift perturbation of nearly every run: healthy films' logits rise and specificity falls. That
could be a learned cue (the shape of a letter, or something in the top-left corner) or the
preprocessing: a white letter covering more than 0.5% of the film becomes its 99.5th percentile
and changes the stretch of every other pixel. Each row changes one thing, pasted on the
original-size film before the device's preprocessing unless said otherwise, and prints the mean
and median change of the logit against the clean film and the share of films whose logit rose:

- the same letter in each of the four corners (a corner cue would show in one);
- black or mid-grey instead of white, and 8% or 22% of the side instead of 15% (only a white
  letter large enough to pass the 0.5% tail should matter if the stretch is the cause);
- a grey block with the letter's total ink spread over its box (brightness without the shape);
- the letter pasted *into the model input*, after the stretch (the shape alone).
"""

from __future__ import annotations

import sys

import numpy as np

from edge_app.classifier import Classifier
from edge_app.preprocessing import prepare_array
from export.run import locate_run, split_samples
from train.markers import paste, render, resized
from train.shift import decode_originals


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return float(np.log(p / (1.0 - p)))


LETTER = render("R", "plain", stroke=1)  # the shift validation's letter


def _letter(gray, full_scale, corner="tl", height=0.15, value=None, spread=False):
    mask = resized(LETTER, height * gray.shape[0])
    if spread:
        mask = np.full_like(mask, mask.mean())
    return paste(gray, mask, corner, full_scale if value is None else value)


VARIANTS = {
    "R top-left 15%, white (the shift validation's)": lambda g, fs: _letter(g, fs),
    "R top-right 15%, white": lambda g, fs: _letter(g, fs, "tr"),
    "R bottom-left 15%, white": lambda g, fs: _letter(g, fs, "bl"),
    "R bottom-right 15%, white": lambda g, fs: _letter(g, fs, "br"),
    "R top-left 15%, black": lambda g, fs: _letter(g, fs, value=0.0),
    "R top-left 15%, mid-grey (0.6)": lambda g, fs: _letter(g, fs, value=0.6 * fs),
    "R top-left 8%, white": lambda g, fs: _letter(g, fs, height=0.08),
    "R top-left 22%, white": lambda g, fs: _letter(g, fs, height=0.22),
    "grey block, the letter's ink spread": lambda g, fs: _letter(g, fs, spread=True),
}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    label = int(argv[2]) if len(argv) == 3 else 0
    classifier = Classifier(argv[0])
    spec = classifier.preprocess
    samples = [s for s in split_samples(locate_run(argv[1]), "validation") if s.label == label]
    films = [(f.gray.astype(np.float32), f.full_scale) for f in decode_originals([s.path for s in samples])]

    def scored(inputs) -> np.ndarray:
        return np.array([_logit(classifier.classify(x)) for x in inputs])

    clean = scored(prepare_array(g, fs, spec).pixels for g, fs in films)
    print(f"{argv[0]} ({spec.id}): {len(films)} validation films of label {label}, clean mean logit {clean.mean():+.2f}")
    print("| change | mean dlogit | median dlogit | share of films up |\n|---|---|---|---|")

    def row(name: str, logits: np.ndarray) -> None:
        d = logits - clean
        print(f"| {name} | {d.mean():+.3f} | {np.median(d):+.3f} | {np.mean(d > 0):.2f} |")

    for name, change in VARIANTS.items():
        row(name, scored(prepare_array(np.clip(change(g, fs), 0.0, fs), fs, spec).pixels for g, fs in films))

    def after_stretch(g, fs):
        pixels = prepare_array(g, fs, spec).pixels.astype(np.float32)
        pixels = paste(pixels, resized(LETTER, 0.15 * pixels.shape[0]), "tl", 255.0)
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)

    row("R top-left 15%, white, pasted into the model input", scored(after_stretch(g, fs) for g, fs in films))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
