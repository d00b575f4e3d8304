"""Fit the input gate's orientation template (``edge_app/orientation.json``) on upright training films.

    python scripts/fit_orientation_template.py [--data ../shared/data/chest_xray/train] [--n 1000]

The template is the mean of ``edge_app.orientation.orientation_view`` (the preprocessed film shrunk to
16 x 16 box means, z-scored) over a seeded sample of the training films, prepared exactly as the
device prepares them (``edge_app.preprocessing``, 128 px, percentile). ``edge_app.gate`` compares
a film's asymmetries with the template's to tell an upright film from one turned by 90 or 180
degrees.

A mirror image differs from the upright film only by the heart, the aortic knob, the stomach's
gas and the diaphragm's height, all small: the template's direction alone catches few mirrored
films. So the left-right antisymmetric part of the view (``view - mirrored view``, its left half:
128 numbers) gets a linear discriminant instead (Fisher's, the upright films' mean over their
covariance, shrunk by ``--shrink`` towards the identity), fitted on ``--mirror-n`` films; its
refusal threshold is the ``--mirror-quantile`` quantile of the fitting films' own scores.
The same is done for half a turn (``upside_down_part``: the top half of ``view - view turned by
180 degrees``), because the template's direction missed 4.3% of films turned upside down. A turned
film's part is the upright one negated, so the discriminant separates them well; its threshold
sits below every fitting film, by 1.5 times the spread of their lowest 1% (``min - 1.5 * (q1% -
min)``): every refusal of an upright film is a child who cannot be screened. Measured on all 5216
training films (analysis of 2026-12-02): factor 0.5 refused 4 upright films, 1.0 none and 99.5%
of films turned 180 degrees (but 167 mirrored films too), 1.5 none, 99.1% and 103 mirrored, 3.0
none, 97.1% and 21 mirrored; the template alone catches 95.7%.
``benchmarks/gate_rates.py`` measures all of them on all training films.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from edge_app.decoding import decode_file
from edge_app.orientation import ORIENTATION_FILE, mirror_part, orientation_view, upside_down_part
from edge_app.preprocessing import PreprocessSpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ORIENTATION_FILE)
    parser.add_argument("--mirror-n", type=int, default=2000)
    parser.add_argument("--shrink", type=float, default=0.3)
    parser.add_argument("--mirror-quantile", type=float, default=0.001)
    args = parser.parse_args()
    films = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    sample = random.Random(args.seed).sample(films, min(args.n, len(films)))
    spec = PreprocessSpec(128)
    views = [orientation_view(decode_file(p, spec).pixels) for p in sample]
    template = np.mean(views, axis=0)
    mirror_sample = random.Random(args.seed + 1).sample(films, min(args.mirror_n, len(films)))
    mirror_views = [orientation_view(decode_file(p, spec).pixels) for p in mirror_sample]
    parts = np.array([mirror_part(v) for v in mirror_views])
    axis = fisher_axis(parts, args.shrink)
    threshold = float(np.quantile(parts @ axis, args.mirror_quantile))
    turned = np.array([upside_down_part(v) for v in mirror_views])
    turn_axis = fisher_axis(turned, args.shrink)
    turn_scores = turned @ turn_axis
    lowest = float(turn_scores.min())
    turn_threshold = lowest - 1.5 * (float(np.quantile(turn_scores, 0.01)) - lowest)
    args.out.write_text(
        json.dumps(
            {
                "what": "mean orientation_view of upright training films (edge_app.gate)",
                "source": f"{len(views)} films sampled (seed {args.seed}) from the Kermany training set",
                "preprocessing": spec.id,
                "made_by": "scripts/fit_orientation_template.py",
                "template": [[round(float(v), 4) for v in row] for row in template],
                "mirror": {
                    "what": "Fisher discriminant of mirror_part(view) for upright films (edge_app.gate)",
                    "source": f"{len(parts)} films sampled (seed {args.seed + 1}), shrinkage {args.shrink}",
                    "axis": [round(float(v), 6) for v in axis],
                    "refuse_below": round(threshold, 6),
                    "threshold_rule": f"{args.mirror_quantile:.2%} quantile of the fitting films' scores",
                },
                "upside_down": {
                    "what": "Fisher discriminant of upside_down_part(view) for upright films (edge_app.orientation)",
                    "source": f"the same {len(turned)} films, shrinkage {args.shrink}",
                    "axis": [round(float(v), 6) for v in turn_axis],
                    "refuse_below": round(turn_threshold, 6),
                    "threshold_rule": "lowest fitting film's score minus 1.5 x the spread of the lowest 1%",
                },
            },
        )
        + "\n"
    )
    print(
        f"wrote {args.out}: template from {len(views)} films, mirror and upside-down axes from {len(parts)}, "
        f"refuse below {threshold:.3f} and {turn_threshold:.3f}"
    )


def fisher_axis(parts: np.ndarray, shrink: float) -> np.ndarray:
    """Unit Fisher discriminant of antisymmetric parts against their negation: the upright films'
    mean over their covariance, shrunk by ``shrink`` towards the identity."""
    mean = parts.mean(axis=0)
    centred = parts - mean
    covariance = centred.T @ centred / len(parts)
    covariance = (1 - shrink) * covariance + shrink * np.eye(len(mean)) * np.trace(covariance) / len(mean)
    axis = np.linalg.solve(covariance, mean)
    return axis / np.linalg.norm(axis)


if __name__ == "__main__":
    main()
