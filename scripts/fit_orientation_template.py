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
``benchmarks/gate_rates.py`` measures both on all training films.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from edge_app.decoding import decode_file
from edge_app.orientation import ORIENTATION_FILE, mirror_part, orientation_view
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
    parts = np.array([mirror_part(orientation_view(decode_file(p, spec).pixels)) for p in mirror_sample])
    mean = parts.mean(axis=0)
    centred = parts - mean
    covariance = centred.T @ centred / len(parts)
    covariance = (1 - args.shrink) * covariance + args.shrink * np.eye(len(mean)) * np.trace(covariance) / len(mean)
    axis = np.linalg.solve(covariance, mean)
    axis /= np.linalg.norm(axis)
    threshold = float(np.quantile(parts @ axis, args.mirror_quantile))
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
            },
        )
        + "\n"
    )
    print(f"wrote {args.out}: template from {len(views)} films, mirror axis from {len(parts)}, refuse below {threshold:.3f}")


if __name__ == "__main__":
    main()
