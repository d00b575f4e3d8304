"""Print a Markdown table comparing training runs (every run, the losers too).

    python scripts/compare_runs.py RUN_DIR [RUN_DIR ...]

Reads each run's metrics.json and config.json; the columns are the ones the model card reports:
size, time, clean validation AUC / sensitivity / specificity at the run's threshold, and the
shift validation (train/shift.py: framing, markers, collimation, recompression) at the same
threshold: worst specificity and sensitivity over the perturbations, minimum AUC, mean decision
flip rate and mean |delta logit| against the clean films. The older stress validation
(blur, gamma, noise) follows as its worst specificity and minimum AUC.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

COLUMNS = (
    "run", "px", "params", "epochs (best)", "minutes", "threshold (rule)", "val AUC", "sens", "spec",
    "shift worst spec", "shift worst sens", "shift min AUC", "shift pooled AUC", "mean flip rate", "mean abs dlogit",
    "stress min spec", "stress min AUC",
)


def _rule(metrics: dict) -> str:
    return "shift-robust" if str(metrics.get("threshold_rule", "")).startswith("shift-robust") else "clean"


def pooled(run: Path, summary: dict) -> str:
    """The pooled shift AUC, from the summary or (older runs) from the saved logits."""
    if "pooled_auc" in summary:
        return f"{summary['pooled_auc']:.4f}"
    if not (run / "shift_logits.npz").is_file():
        return "–"
    import numpy as np

    from train.shift import pooled_auc

    data = np.load(run / "shift_logits.npz")
    return f"{pooled_auc(data['labels'], dict(data)):.4f}"


def row(run: Path) -> str:
    m = json.loads((run / "metrics.json").read_text())
    c = json.loads((run / "config.json").read_text())
    s = m.get("stress", {}).get("summary")
    stress_cells = f"{s['min_specificity']:.3f} | {s['min_auc']:.4f}" if s else "– | –"
    if "epochs_run" not in m:  # a run stopped early and finished by `pneumoscan-train shift --update`
        with (run / "history.csv").open() as f:
            aucs = [float(r["val_auc"]) for r in csv.DictReader(f)]
        m.update(epochs_run=len(aucs), best_epoch=aucs.index(max(aucs)) + 1)
    shift = m.get("shift", {}).get("summary")
    shift_cells = (
        f"{shift['min_specificity']:.3f} | {shift['min_sensitivity']:.3f} | {shift['min_auc']:.4f} "
        f"| {pooled(run, shift)} | {shift['mean_flip_rate']:.3f} | {shift['mean_abs_delta_logit']:.2f}"
        if shift else "– | – | – | – | – | –"
    )
    params = f"{m['params']:,}" if "params" in m else "–"
    minutes = f"{m['wall_seconds'] / 60:.1f}" if "wall_seconds" in m else "stopped"
    return (
        f"| {run.name} | {c['image_size']} | {params} | {m['epochs_run']} ({m['best_epoch']}) | {minutes} "
        f"| {m['threshold']:.3f} ({_rule(m)}) | {m['auc']:.4f} | {m['sensitivity']:.3f} | {m['specificity']:.3f} "
        f"| {shift_cells} | {stress_cells} |"
    )


def main(runs: list[str]) -> None:
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for run in runs:
        path = Path(run)
        if (path / "metrics.json").is_file():
            print(row(path))


if __name__ == "__main__":
    main(sys.argv[1:])
