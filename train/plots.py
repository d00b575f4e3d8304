"""PNG plots a reviewer looks at: training curves, ROC curve, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless workstations and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from train.metrics import roc_curve  # noqa: E402


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    pairs = [k for k in ("loss", "auc", "accuracy") if k in history]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.5 * len(pairs), 3.5))
    for ax, key in zip(np.atleast_1d(axes), pairs):
        ax.plot(history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="validation")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc(labels: np.ndarray, scores: np.ndarray, auc: float, threshold: float, path: Path) -> None:
    fpr, tpr, _ = roc_curve(labels, scores)
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores)
    op_tpr = (scores[labels] >= threshold).mean()
    op_fpr = (scores[~labels] >= threshold).mean()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax.plot([op_fpr], [op_tpr], "o", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(confusion: dict[str, int], class_names: tuple[str, str], path: Path) -> None:
    matrix = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], [f"called {n}" for n in class_names])
    ax.set_yticks([0, 1], [f"is {n}" for n in class_names])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
