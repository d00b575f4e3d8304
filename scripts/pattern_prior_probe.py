"""Would moving the bacterial / viral decision to the patterns' prevalence raise the accuracy?

    python scripts/pattern_prior_probe.py RUN_DIR MODEL.tflite [MODEL.tflite ...]

The pattern heads are trained with balanced pattern weights, so their P(viral) = 0.5 boundary
treats both patterns as equally common; the training folder holds 2,530 bacterial and 1,345
viral films, the kept-aside test split 242 and 148 (issue 17). If a head's probabilities were
those of a 50/50 prior, adding the log prior ratio to its logit (Saerens et al., 2002) would give
the decision that is most often right at that mix. The script reads the same films as
``scripts/compare_patterns.py`` (RUN_DIR's validation pneumonia films) through each model, and
prints viral and bacterial found and the accuracy at the test mix with the boundary as shipped
and moved by the log ratio of the training folder's and of the test split's mix, on every film
and on the films the model calls pneumonia. Nothing is read from the test split but its counts.
"""

from __future__ import annotations

import sys

import numpy as np

from compare_patterns import TEST_MIX, pattern_samples, read_patterns

OFFSETS = {
    "as shipped, P(viral) = 0.5": 0.0,
    "moved to the training folder's mix (1,345 / 2,530)": float(np.log(1345 / 2530)),
    "moved to the test split's mix (148 / 242)": float(np.log(TEST_MIX["viral"] / TEST_MIX["bacterial"])),
}


def main(run_dir: str, models: list[str]) -> None:
    samples = pattern_samples(run_dir)
    for model in models:
        patterns, probabilities, called, _ = read_patterns(model, samples)
        logit, viral = np.log(probabilities[:, 1] / probabilities[:, 0]), patterns == 1
        print(model)
        for where, mask in (("every film", np.ones_like(viral)), (f"called pneumonia ({int(called.sum())})", called)):
            for name, offset in OFFSETS.items():
                z, v = logit[mask] + offset, viral[mask]
                found = {"viral": np.mean(z[v] >= 0), "bacterial": np.mean(z[~v] < 0)}
                mix = sum(TEST_MIX[k] * found[k] for k in TEST_MIX) / sum(TEST_MIX.values())
                print(f"  {where}, boundary {name}: viral found {found['viral']:.3f}, "
                      f"bacterial found {found['bacterial']:.3f}, accuracy at the test mix {mix:.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
