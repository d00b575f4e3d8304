"""Fit the input gate's orientation template (``edge_app/orientation.json``) on upright training films.

    python scripts/fit_orientation_template.py [--data ../shared/data/chest_xray/train] [--n 1000]

The template is the mean of ``edge_app.gate.orientation_view`` (the preprocessed film shrunk to
16 x 16 box means, z-scored) over a seeded sample of the training films, prepared exactly as the
device prepares them (``edge_app.preprocessing``, 128 px, percentile). ``edge_app.gate`` compares
a film's asymmetries with the template's to tell an upright film from one turned by 90 or 180
degrees or mirrored; ``benchmarks/gate_rates.py`` measures how well.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from edge_app.decoding import decode_file
from edge_app.gate import ORIENTATION_FILE, orientation_view
from edge_app.preprocessing import PreprocessSpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ORIENTATION_FILE)
    args = parser.parse_args()
    films = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    sample = random.Random(args.seed).sample(films, min(args.n, len(films)))
    spec = PreprocessSpec(128)
    views = [orientation_view(decode_file(p, spec).pixels) for p in sample]
    template = np.mean(views, axis=0)
    args.out.write_text(
        json.dumps(
            {
                "what": "mean orientation_view of upright training films (edge_app.gate)",
                "source": f"{len(views)} films sampled (seed {args.seed}) from the Kermany training set",
                "preprocessing": spec.id,
                "made_by": "scripts/fit_orientation_template.py",
                "template": [[round(float(v), 4) for v in row] for row in template],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out} from {len(views)} films")


if __name__ == "__main__":
    main()
