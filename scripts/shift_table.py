"""The shift validation of an exported file as the model card prints it, beside another file's.

    python scripts/shift_table.py MODEL.tflite [OTHER.tflite]

Reads only the contracts (``validation_metrics.shift``: each file's own shift validation, scored
through the device classifier at that file's threshold when it was exported), so the table is
the files' record, not a new measurement. Per perturbation: AUC, sensitivity, specificity, the
decision flip rate against the clean film, the mean |delta logit| and the healthy films' mean
logit change (> 0: they look sicker); for OTHER, its specificity / sensitivity / flips / delta.
"""

from __future__ import annotations

import sys

from edge_app.contract import read_metadata


def _shift(path: str) -> tuple[dict, dict]:
    metadata = read_metadata(path)
    return metadata, metadata["validation_metrics"]["shift"]


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    metadata, shift = _shift(argv[0])
    clean = metadata["validation_metrics"]
    other = _shift(argv[1]) if len(argv) == 2 else None
    head = ["perturbation"] + ([f"{other[0]['version']}: spec / sens / flips / Δz(N)"] if other else [])
    head += ["AUC", "sens", "spec", "flip rate", "mean abs Δlogit", "Δz(N)"]
    print(f"{metadata['version']} at {shift['summary']['threshold']:.4f}")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    row = ["none"]
    if other:
        o = other[0]["validation_metrics"]
        row.append(f"{o['specificity']:.3f} / {o['sensitivity']:.3f} / – / –")
    print("| " + " | ".join(row + [f"{clean['auc']:.4f}", f"{clean['sensitivity']:.3f}", f"{clean['specificity']:.3f}", "–", "–", "–"]) + " |")
    for name, p in sorted(shift["perturbations"].items()):
        row = [name]
        if other:
            q = other[1]["perturbations"][name]
            row.append(f"{q['specificity']:.3f} / {q['sensitivity']:.3f} / {q['flip_rate']:.3f} / {q['normal_mean_delta_logit']:+.2f}")
        row += [f"{p['auc']:.4f}", f"{p['sensitivity']:.3f}", f"{p['specificity']:.3f}", f"{p['flip_rate']:.3f}",
                f"{p['mean_abs_delta_logit']:.2f}", f"{p['normal_mean_delta_logit']:+.2f}"]
        print("| " + " | ".join(row) + " |")
    s = shift["summary"]
    print(f"summary: worst spec {s['min_specificity']:.3f} ({s['worst_specificity_perturbation']}), worst sens "
          f"{s['min_sensitivity']:.3f}, min AUC {s['min_auc']:.4f}, pooled AUC {s['pooled_auc']:.4f}, mean spec "
          f"{s['mean_specificity']:.3f}, mean flip rate {s['mean_flip_rate']:.3f}, mean abs Δlogit {s['mean_abs_delta_logit']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
