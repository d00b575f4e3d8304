"""The shift validation: the same validation films, framed and labelled the way another hospital
would, scored through the device's preprocessing.

The shipped model kept specificity 0.995 on validation and fell to 0.652 on the kept-aside test
split: it had learnt how the films were *framed* (tight crops, black borders) and *labelled*
(large laterality letters) rather than only the lungs, and its threshold, chosen on clean
validation, did not survive. Every perturbation here changes one such cue on the decoded,
original-size film (before any resizing), then runs :func:`edge_app.preprocessing.prepare_array`
(or, for recompression, :func:`~edge_app.preprocessing.prepare_file` on the re-encoded file),
the device's one definition of preprocessing. For each we report AUC and the sensitivity and
specificity at the threshold, and what the *change* did: the share of decisions that flipped
against the clean film and the mean absolute change of the logit. A model that reads the lungs
flips few decisions whatever the framing; one that reads the framing flips many.
"""

from __future__ import annotations

from dataclasses import dataclass
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from edge_app.preprocessing import (
    MIN_SIDE,
    PreprocessSpec,
    decode_gray,
    prepare_array,
    prepare_file,
)
from train.markers import paste, render, resized
from train.metrics import binary_metrics, roc_auc

#: Scores a stack of preprocessed uint8 images (n, s, s) -> logits (n,).
Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Film:
    """One decoded film at its original size, in its own units (0..full_scale)."""

    gray: np.ndarray
    full_scale: float


def decode_originals(paths: list[str | Path]) -> list[Film]:
    """Decode each file as the device does, but stop before resizing and normalisation."""
    films = []
    for path in paths:
        films.append(Film(*decode_gray(path)))
    return films


# --- perturbations of an original film: (gray, full_scale) -> gray --------------------------


def crop(gray: np.ndarray, fraction: float) -> np.ndarray:
    """Cut ``fraction`` of the side off each edge (tighter framing)."""
    h, w = gray.shape
    dy, dx = int(round(fraction * h)), int(round(fraction * w))
    return gray[dy : h - dy, dx : w - dx]


def pad(gray: np.ndarray, fraction: float, mode: str) -> np.ndarray:
    """Add ``fraction`` of the side on each edge (looser framing): ``edge`` repeats the border
    pixels, ``black`` fills with 0."""
    h, w = gray.shape
    dy, dx = int(round(fraction * h)), int(round(fraction * w))
    if mode == "edge":
        return np.pad(gray, ((dy, dy), (dx, dx)), mode="edge")
    return np.pad(gray, ((dy, dy), (dx, dx)), mode="constant", constant_values=0.0)


def shift(gray: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Move the film by (dx, dy) shares of its side, repeating the edge into the uncovered strip."""
    h, w = gray.shape
    px, py = int(round(dx * w)), int(round(dy * h))
    padded = np.pad(gray, ((abs(py), abs(py)), (abs(px), abs(px))), mode="edge")
    top, left = abs(py) - py, abs(px) - px
    return padded[top : top + h, left : left + w]


def aspect(gray: np.ndarray, ratio: float) -> np.ndarray:
    """Frame a region ``ratio`` times as wide as tall (the device squashes it to a square):
    ratio < 1 keeps the central ``ratio`` of the width, ratio > 1 the central ``1/ratio`` of the height."""
    h, w = gray.shape
    if ratio < 1:
        keep = int(round(w * ratio))
        left = (w - keep) // 2
        return gray[:, left : left + keep]
    keep = int(round(h / ratio))
    top = (h - keep) // 2
    return gray[top : top + keep, :]


def bands(gray: np.ndarray, sides: str, fraction: float) -> np.ndarray:
    """Black collimation bands ``fraction`` of the side wide on ``sides`` ("lr" or "tb")."""
    out = gray.copy()
    h, w = out.shape
    if sides == "lr":
        k = int(round(fraction * w))
        out[:, :k], out[:, w - k :] = 0.0, 0.0
    else:
        k = int(round(fraction * h))
        out[:k, :], out[h - k :, :] = 0.0, 0.0
    return out


def black_corner(gray: np.ndarray, fraction: float) -> np.ndarray:
    """The top-left ``fraction`` x ``fraction`` block blacked out."""
    out = gray.copy()
    h, w = out.shape
    out[: int(round(fraction * h)), : int(round(fraction * w))] = 0.0
    return out


def letter(gray: np.ndarray, full_scale: float, text: str, corner: str, height: float, style: str) -> np.ndarray:
    """A white laterality letter ``height`` of the side tall in ``corner``."""
    mask = resized(render(text, style, stroke=1), height * gray.shape[0])
    return paste(gray, mask, corner, full_scale)


def text_lines(gray: np.ndarray, full_scale: float) -> np.ndarray:
    """Two lines of annotation text, bottom-left and top-right, ~4% of the side tall."""
    out = paste(gray, resized(render("AP PORTABLE 08:15"), 0.035 * gray.shape[0]), "bl", full_scale)
    return paste(out, resized(render("SUPINE  L"), 0.045 * gray.shape[0]), "tr", full_scale)


def _recompressed(film: Film, quality: int, spec: PreprocessSpec, folder: str) -> np.ndarray:
    """The model input of the original-size film re-encoded as an 8-bit JPEG at ``quality`` (a
    PACS or phone export), read back through the device's own file path."""
    pixels = np.clip(np.rint(film.gray * (255.0 / film.full_scale)), 0, 255).astype(np.uint8)
    path = Path(folder) / "film.jpeg"
    Image.fromarray(pixels).save(path, "JPEG", quality=quality)
    return prepare_file(path, spec).pixels


Perturbation = Callable[[np.ndarray, float], np.ndarray]

#: name -> (group, change to the original film). Groups: "framing" (crop, pad, shift, aspect,
#: collimation), "markers" (letters and text), "recompression" (handled by :func:`model_inputs`).
PERTURBATIONS: dict[str, tuple[str, Perturbation | None]] = {
    "crop_5": ("framing", lambda g, fs: crop(g, 0.05)),
    "crop_10": ("framing", lambda g, fs: crop(g, 0.10)),
    "pad_edge_10": ("framing", lambda g, fs: pad(g, 0.10, "edge")),
    "pad_edge_25": ("framing", lambda g, fs: pad(g, 0.25, "edge")),
    "pad_black_10": ("framing", lambda g, fs: pad(g, 0.10, "black")),
    "pad_black_25": ("framing", lambda g, fs: pad(g, 0.25, "black")),
    "shift_left_10": ("framing", lambda g, fs: shift(g, -0.10, 0.0)),
    "shift_right_10": ("framing", lambda g, fs: shift(g, 0.10, 0.0)),
    "shift_up_10": ("framing", lambda g, fs: shift(g, 0.0, -0.10)),
    "shift_down_10": ("framing", lambda g, fs: shift(g, 0.0, 0.10)),
    "aspect_0.8": ("framing", lambda g, fs: aspect(g, 0.8)),
    "aspect_1.25": ("framing", lambda g, fs: aspect(g, 1.25)),
    "bands_lr_10": ("framing", lambda g, fs: bands(g, "lr", 0.10)),
    "bands_tb_10": ("framing", lambda g, fs: bands(g, "tb", 0.10)),
    "corner_black_22": ("framing", lambda g, fs: black_corner(g, 0.22)),
    "letter_R_tl_15": ("markers", lambda g, fs: letter(g, fs, "R", "tl", 0.15, "plain")),
    "letter_R_tl_10_boxed": ("markers", lambda g, fs: letter(g, fs, "R", "tl", 0.10, "boxed")),
    "letter_L_tr_8": ("markers", lambda g, fs: letter(g, fs, "L", "tr", 0.08, "plain")),
    "text_corners": ("markers", lambda g, fs: text_lines(g, fs)),
    "jpeg_q30": ("recompression", None),
}


def _at_least_min_side(gray: np.ndarray) -> np.ndarray:
    """A film cropped below the device's smallest accepted side (tiny test films only; real
    films are hundreds of pixels) scaled up to it, so the device path still accepts it."""
    if min(gray.shape) >= MIN_SIDE:
        return gray
    factor = MIN_SIDE / min(gray.shape)
    size = (max(MIN_SIDE, round(gray.shape[1] * factor)), max(MIN_SIDE, round(gray.shape[0] * factor)))
    return np.asarray(Image.fromarray(gray.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))


def model_inputs(films: list[Film], name: str, spec: PreprocessSpec) -> np.ndarray:
    """The (n, s, s) uint8 model inputs for perturbation ``name`` ("clean": none), made by the
    device's preprocessing from the changed original-size films."""
    out = np.empty((len(films), spec.image_size, spec.image_size), np.uint8)
    with tempfile.TemporaryDirectory(prefix="pneumoscan-shift-") as folder:
        for i, film in enumerate(films):
            if name == "clean":
                out[i] = prepare_array(film.gray, film.full_scale, spec).pixels
            elif name == "jpeg_q30":
                out[i] = _recompressed(film, 30, spec, folder)
            else:
                changed = PERTURBATIONS[name][1](film.gray.astype(np.float32), film.full_scale)
                changed = _at_least_min_side(np.clip(changed, 0.0, film.full_scale))
                out[i] = prepare_array(changed, film.full_scale, spec).pixels
    return out


def shift_logits(score: Score, films: list[Film], spec: PreprocessSpec) -> dict[str, np.ndarray]:
    """Logits for the clean films and every perturbation (inputs are made one set at a time)."""
    return {name: np.asarray(score(model_inputs(films, name, spec)), np.float64).reshape(-1)
            for name in ("clean", *PERTURBATIONS)}


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def threshold_logit(threshold: float) -> float:
    return float(np.log(threshold / (1.0 - threshold)))


def pooled_auc(labels: np.ndarray, logits: dict[str, np.ndarray]) -> float:
    """AUC over the clean films and all their shifted copies ranked together: a healthy film that
    scores higher when re-framed then outranks sick films scored as they are."""
    names = ["clean", *PERTURBATIONS]
    return roc_auc(np.tile(labels, len(names)), np.concatenate([logits[n] for n in names]))


def shift_report(labels: np.ndarray, logits: dict[str, np.ndarray], threshold: float) -> dict:
    """Per perturbation: metrics at ``threshold``, decision flip rate and mean |delta logit| against
    the clean film, and the mean logit change of the healthy films (> 0: they look sicker).
    ``summary`` holds the selection criteria: worst specificity and sensitivity, flip rates."""
    labels = np.asarray(labels).astype(int)
    clean = logits["clean"]
    cut = threshold_logit(threshold)
    report = {"clean": binary_metrics(labels, sigmoid(clean), threshold)}
    for name, (group, _) in PERTURBATIONS.items():
        z = logits[name]
        m = binary_metrics(labels, sigmoid(z), threshold)
        m["group"] = group
        m["flip_rate"] = float(np.mean((z >= cut) != (clean >= cut)))
        m["mean_abs_delta_logit"] = float(np.mean(np.abs(z - clean)))
        m["normal_mean_delta_logit"] = float(np.mean((z - clean)[labels == 0])) if (labels == 0).any() else None
        report[name] = m
    shifted = [report[n] for n in PERTURBATIONS]
    report["summary"] = {
        "min_specificity": float(min(m["specificity"] for m in shifted)),
        "min_sensitivity": float(min(m["sensitivity"] for m in shifted)),
        "min_auc": float(min(m["auc"] for m in shifted)),
        "mean_auc": float(np.mean([m["auc"] for m in shifted])),
        "mean_specificity": float(np.mean([m["specificity"] for m in shifted])),
        "mean_flip_rate": float(np.mean([m["flip_rate"] for m in shifted])),
        "max_flip_rate": float(max(m["flip_rate"] for m in shifted)),
        "mean_abs_delta_logit": float(np.mean([m["mean_abs_delta_logit"] for m in shifted])),
        "worst_specificity_perturbation": min(PERTURBATIONS, key=lambda n: report[n]["specificity"]),
        # one ranking over the clean and every shifted copy: low when scores move with framing
        "pooled_auc": pooled_auc(labels, logits),
        "threshold": float(threshold),
    }
    return report


def format_report(report: dict) -> str:
    """A fixed-width table of the shift validation for the terminal and the logs."""
    rows = [f"{'perturbation':<22} {'AUC':>6} {'sens':>6} {'spec':>6} {'flips':>6} {'|dz|':>6} {'dz(N)':>6}"]
    for name, m in report.items():
        if name == "summary":
            continue
        flips = m.get("flip_rate", 0.0)
        dz = m.get("mean_abs_delta_logit", 0.0)
        dzn = m.get("normal_mean_delta_logit") or 0.0
        rows.append(
            f"{name:<22} {m['auc']:6.4f} {m['sensitivity']:6.3f} {m['specificity']:6.3f} {flips:6.3f} {dz:6.2f} {dzn:+6.2f}"
        )
    s = report["summary"]
    rows.append(
        f"worst specificity {s['min_specificity']:.3f} ({s['worst_specificity_perturbation']}), "
        f"worst sensitivity {s['min_sensitivity']:.3f}, min AUC {s['min_auc']:.4f}, "
        f"mean flip rate {s['mean_flip_rate']:.3f}, mean |dlogit| {s['mean_abs_delta_logit']:.2f}"
    )
    return "\n".join(rows)
