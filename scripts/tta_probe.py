"""Does test-time averaging over a few framings pay? One int8 model, its validation films, the
shift validation, with and without averaging.

    python scripts/tta_probe.py MODEL.tflite RUN_DIR

Issue 11 lists "test-time averaging over a few framings if it pays". For every film of the
run's validation split (``RUN_DIR/split.json``; any run trained on the same split) and every perturbation P of the shift validation
(``train/shift.py``, clean included; the recompression set is left out, it is made from the file),
the device classifier scores P, P then a 5% crop, and P then 10% edge-repeat padding. Three ways
of reading a film are then compared: the single view (what the device does), the mean logit of
P and its padded copy ("2 views"), and the mean of all three ("3 views"). For each, the
threshold is re-picked by the shipped rule (``shift_robust_threshold`` at sensitivity 0.95), so
the comparison is at equal guarantees, and the script prints the clean figures, the worst and
mean specificity over the perturbations, the worst sensitivity and AUC, and, for a model with a
pattern head, the pattern AUC on the films each reading calls pneumonia.

The averaging views are chosen before looking (mild, one tighter and one looser framing); the
point is whether averaging helps at all, not to search for the best views on validation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge_app.classifier import Classifier, sigmoid
from edge_app.preprocessing import prepare_array
from export.run import locate_run, split_samples
from train.metrics import binary_metrics, roc_auc, shift_robust_threshold
from train.shift import PERTURBATIONS, crop, decode_originals, pad

VIEWS = {"single": ("",), "2 views": ("", "pad10"), "3 views": ("", "crop5", "pad10")}
AVERAGED = {"": lambda g: g, "crop5": lambda g: crop(g, 0.05), "pad10": lambda g: pad(g, 0.10, "edge")}
SETS = ("clean", *(name for name, (_, change) in PERTURBATIONS.items() if change is not None))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return float(np.log(p / (1.0 - p)))


def score(model: Path, paths: list[Path]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray | None]]:
    """(set, averaged view) -> (screening logits, pattern logits or None) over the films."""
    classifier = Classifier(model)
    spec = classifier.preprocess
    has_pattern = classifier.contract.pattern is not None
    films = decode_originals(paths)
    out = {}
    for name in SETS:
        rows = {view: ([], []) for view in AVERAGED}
        for film in films:
            gray = film.gray.astype(np.float32)
            if name != "clean":
                gray = np.clip(PERTURBATIONS[name][1](gray, film.full_scale), 0.0, film.full_scale)
            for view, change in AVERAGED.items():
                rows[view][0].append(_logit(classifier.classify(prepare_array(change(gray), film.full_scale, spec).pixels)))
                if has_pattern:
                    rows[view][1].append(_logit(classifier.pattern_probabilities()[-1]))
        for view, (screen, pattern) in rows.items():
            out[name, view] = (np.array(screen), np.array(pattern) if has_pattern else None)
    return out


def report(logits, labels: np.ndarray, patterns: np.ndarray) -> None:
    shifted = [n for n in SETS if n != "clean"]
    print("| reading | threshold | clean AUC | clean sens / spec | worst shift spec | mean shift spec | worst shift sens "
          "| min shift AUC | pattern AUC on called films: clean / mean over shifts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for reading, views in VIEWS.items():
        screen = {n: sigmoid(np.mean([logits[n, v][0] for v in views], axis=0)) for n in SETS}
        threshold, _ = shift_robust_threshold(labels, screen, 0.95)
        m = {n: binary_metrics(labels, screen[n], threshold) for n in SETS}
        worst = min(shifted, key=lambda n: m[n]["specificity"])
        pattern_cell = "–"
        if logits["clean", ""][1] is not None:
            aucs = []
            for n in SETS:
                z = np.mean([logits[n, v][1] for v in views], axis=0)
                keep = (patterns >= 0) & (screen[n] >= threshold)
                aucs.append(roc_auc(patterns[keep], z[keep]))
            pattern_cell = f"{aucs[0]:.3f} / {np.mean(aucs[1:]):.3f}"
        print(f"| {reading} | {threshold:.4f} | {m['clean']['auc']:.4f} | {m['clean']['sensitivity']:.3f} / "
              f"{m['clean']['specificity']:.3f} | {m[worst]['specificity']:.3f} ({worst}) "
              f"| {np.mean([m[n]['specificity'] for n in shifted]):.3f} | {min(m[n]['sensitivity'] for n in shifted):.3f} "
              f"| {min(m[n]['auc'] for n in shifted):.4f} | {pattern_cell} |")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    samples = split_samples(locate_run(argv[1]), "validation")
    labels = np.array([s.label for s in samples])
    patterns = np.array([s.pattern for s in samples])  # NO_PATTERN (< 0) for a film without one
    report(score(Path(argv[0]), [s.path for s in samples]), labels, patterns)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
