"""The ROC curve and the threshold trade-off of a site calibration, as PNG files beside ``site.json``.

For the person who signs the profile off: where the site's threshold and the model's sit on the
curve, and what moving the threshold does to sensitivity, specificity and the share referred.
matplotlib is the optional ``[plots]`` extra (the device screens without it), imported here,
inside the function, so ``pneumoscan calibrate`` still writes a profile where it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed; ``str()`` says how to get the plots."""


def plot_paths(profile_path: Path) -> tuple[Path, Path]:
    """``site.json`` -> ``site-roc.png``, ``site-thresholds.png`` in the same folder."""
    return (
        profile_path.with_name(f"{profile_path.stem}-roc.png"),
        profile_path.with_name(f"{profile_path.stem}-thresholds.png"),
    )


def _curves(labels: np.ndarray, scores: np.ndarray):
    """Sensitivity, specificity and share referred at every observed score used as threshold."""
    thresholds = np.unique(scores)
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    # share of each class scoring >= t, for every t (searchsorted keeps this O(n log n))
    sens = 1.0 - np.searchsorted(pos, thresholds, side="left") / len(pos)
    fpr = 1.0 - np.searchsorted(neg, thresholds, side="left") / len(neg)
    referred = (sens * len(pos) + fpr * len(neg)) / (len(pos) + len(neg))
    return thresholds, sens, 1.0 - fpr, referred


def write_plots(labels, scores, calibration, profile_path: Path, *, force: bool = False) -> list[Path]:
    """Write both PNGs; raises :class:`PlotsUnavailable` without matplotlib, ``FileExistsError``
    if one exists and ``force`` is false (checked before anything is drawn)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on the device or in CI
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable("plots skipped: matplotlib is not installed (pip install 'pneumoscan[plots]')") from None
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    roc_path, tradeoff_path = plot_paths(Path(profile_path))
    if not force:
        for path in (roc_path, tradeoff_path):
            if path.exists():
                raise FileExistsError(f"{path} already exists; refusing to overwrite it (use --force)")
    # A threshold t between two observed scores refers exactly the films at or above the upper
    # one, so each value holds on the interval that ends at its score: steps drawn "pre".
    thresholds, sens, spec, referred = _curves(labels, scores)
    site, model = calibration.recommended, calibration.at_model_threshold
    auc, low, high = calibration.auc

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot(np.r_[0.0, (1 - spec)[::-1], 1.0], np.r_[0.0, sens[::-1], 1.0], color="black", lw=1.5,
            label=f"AUC {auc:.3f} ({low:.3f}-{high:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    for row, colour, name in ((site, "tab:red", "site"), (model, "tab:blue", "model")):
        ax.plot(1 - row.specificity.value, row.sensitivity.value, "o", color=colour,
                label=f"{name} threshold {row.threshold:.3f}")
    ax.axhline(calibration.target, color="tab:red", lw=0.8, ls="--", label=f"sensitivity target {calibration.target:g}")
    ax.set(xlabel="1 - specificity (healthy children referred)", ylabel="sensitivity (pneumonia referred)",
           xlim=(0, 1), ylim=(0, 1.01), title="ROC on the site's labelled films")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(roc_path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.step(thresholds, sens, where="pre", label="sensitivity", color="tab:red")
    ax.step(thresholds, spec, where="pre", label="specificity", color="tab:green")
    ax.step(thresholds, referred, where="pre", label="share referred", color="tab:purple", ls="--")
    if calibration.band is not None:
        ax.axvspan(*calibration.band, color="gold", alpha=0.25, label="uncertain band")
    ax.axvline(site.threshold, color="tab:red", lw=1, label=f"site threshold {site.threshold:.3f}")
    ax.axvline(model.threshold, color="tab:blue", lw=1, ls=":", label=f"model threshold {model.threshold:.3f}")
    ax.set(xlabel="threshold on P(pneumonia)", ylabel="share", xlim=(0, 1), ylim=(0, 1.01),
           title="What the threshold trades")
    ax.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    fig.savefig(tradeoff_path)
    plt.close(fig)
    return [roc_path, tradeoff_path]
