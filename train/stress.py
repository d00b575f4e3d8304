"""A harder validation: the same patients, with the cues that do not survive a new hospital removed.

Patient-wise validation flatters a model that learnt shortcuts of the source hospital (NORMAL
films in this set are sharper than PNEUMONIA ones). Here every validation image is degraded in
ways a different X-ray unit, scanner or JPEG encoder would degrade it, re-normalised exactly as
the device would, and scored at the run's threshold. A model that leans on sharpness loses
specificity under ``blur``; one that leans on exposure loses it under the gamma shifts.
``sharpness_stratified_auc`` compares only images of similar sharpness, so the cue cannot help.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

from edge_app.preprocessing import PreprocessSpec, normalize_intensity
from train.metrics import binary_metrics, roc_auc

Predict = Callable[[np.ndarray], np.ndarray]


def _resample(img: np.ndarray, factor: float) -> np.ndarray:
    size = img.shape[0]
    small = max(8, int(round(size / factor)))
    pil = Image.fromarray(img.astype(np.float32), mode="F")
    down = pil.resize((small, small), Image.Resampling.BILINEAR)
    return np.asarray(down.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf), dtype=np.float32)


def _sharpen(img: np.ndarray) -> np.ndarray:
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.UnsharpMask(2, 80, 2)), dtype=np.float32)


def _gamma(img: np.ndarray, gamma: float) -> np.ndarray:
    return 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma


def _noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return img + np.random.default_rng(seed).normal(0.0, sigma, img.shape)


PERTURBATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "blur_x2": lambda img, _: _resample(img, 2.0),
    "blur_x3": lambda img, _: _resample(img, 3.0),
    "sharpen": lambda img, _: _sharpen(img),
    "gamma_0.6": lambda img, _: _gamma(img, 0.6),
    "gamma_1.6": lambda img, _: _gamma(img, 1.6),
    "contrast_0.6": lambda img, _: img.mean() + 0.6 * (img - img.mean()),
    "noise_8": lambda img, seed: _noise(img, 8.0, seed),
    "jpeg_q20": lambda img, _: _jpeg(img, 20),
}


def perturb(images: np.ndarray, name: str, spec: PreprocessSpec) -> np.ndarray:
    """Apply perturbation ``name`` to uint8 model inputs and re-normalise as the device would."""
    fn = PERTURBATIONS[name]
    out = np.empty_like(images)
    for i, img in enumerate(images):
        degraded = fn(img.astype(np.float32), i)
        out[i] = normalize_intensity(np.clip(degraded, 0, 255), 255.0, spec.normalization)
    return out


def laplacian_energy(images: np.ndarray) -> np.ndarray:
    """Mean absolute 4-neighbour Laplacian per image: a simple sharpness measure."""
    x = images.astype(np.float32)
    lap = (
        -4 * x[:, 1:-1, 1:-1]
        + x[:, :-2, 1:-1]
        + x[:, 2:, 1:-1]
        + x[:, 1:-1, :-2]
        + x[:, 1:-1, 2:]
    )
    return np.abs(lap).mean(axis=(1, 2))


def sharpness_stratified_auc(labels: np.ndarray, scores: np.ndarray, images: np.ndarray, bins: int = 5) -> float:
    """AUC within quantile bins of sharpness, averaged weighted by pairs: the cue cannot help."""
    sharp = laplacian_energy(images)
    edges = np.quantile(sharp, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, sharp, side="right") - 1, 0, bins - 1)
    total, weight = 0.0, 0
    for b in range(bins):
        mask = which == b
        pos, neg = int(labels[mask].sum()), int((1 - labels[mask]).sum())
        if pos and neg:
            total += roc_auc(labels[mask], scores[mask]) * pos * neg
            weight += pos * neg
    return float(total / weight) if weight else float("nan")


def stress_report(
    predict: Predict, images: np.ndarray, labels: np.ndarray, threshold: float, spec: PreprocessSpec
) -> dict:
    """Metrics on the clean and every perturbed copy of the validation set, plus a summary."""
    clean_scores = predict(images)
    report = {"clean": binary_metrics(labels, clean_scores, threshold)}
    report["clean"]["sharpness_stratified_auc"] = sharpness_stratified_auc(labels, clean_scores, images)
    for name in PERTURBATIONS:
        scores = predict(perturb(images, name, spec))
        report[name] = binary_metrics(labels, scores, threshold)
    perturbed = [report[name] for name in PERTURBATIONS]
    report["summary"] = {
        "mean_auc": float(np.mean([m["auc"] for m in perturbed])),
        "min_auc": float(np.min([m["auc"] for m in perturbed])),
        "min_specificity": float(np.min([m["specificity"] for m in perturbed])),
        "min_sensitivity": float(np.min([m["sensitivity"] for m in perturbed])),
        "mean_accuracy": float(np.mean([m["accuracy"] for m in perturbed])),
        "sharpness_stratified_auc": report["clean"]["sharpness_stratified_auc"],
    }
    return report
