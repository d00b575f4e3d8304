"""Print a Markdown table comparing training runs (every run, the losers too).

    python scripts/compare_runs.py RUN_DIR [RUN_DIR ...]

Reads each run's metrics.json and config.json; the columns are the ones the model card reports:
size, time, validation AUC / sensitivity / specificity at the run's threshold, and the harder
(stress) validation: mean and minimum AUC over the perturbations, the lowest specificity and
sensitivity any perturbation produced, and the sharpness-stratified AUC.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(run: Path) -> str:
    m = json.loads((run / "metrics.json").read_text())
    c = json.loads((run / "config.json").read_text())
    s = m["stress"]["summary"]
    return (
        f"| {run.name} | {c['image_size']} | {m['params']:,} | {m['epochs_run']} ({m['best_epoch']}) "
        f"| {m['wall_seconds'] / 60:.1f} | {m['auc']:.4f} | {m['sensitivity']:.3f} | {m['specificity']:.3f} "
        f"| {m['threshold']:.3f} | {s['mean_auc']:.4f} | {s['min_auc']:.4f} | {s['min_specificity']:.3f} "
        f"| {s['min_sensitivity']:.3f} | {s['sharpness_stratified_auc']:.4f} |"
    )


def main(runs: list[str]) -> None:
    print(
        "| run | px | params | epochs (best) | minutes | val AUC | sens | spec | threshold "
        "| stress mean AUC | stress min AUC | stress min spec | stress min sens | sharpness-strat. AUC |"
    )
    print("|" + "---|" * 14)
    for run in runs:
        path = Path(run)
        if (path / "metrics.json").is_file():
            print(row(path))


if __name__ == "__main__":
    main(sys.argv[1:])
