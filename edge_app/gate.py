"""Statistics for the input gate: is this plausibly a frontal chest radiograph?

A model scores anything it is given, so a photo of a receipt would come back "NORMAL" with a
confident number. The gate compares a handful of simple per-image statistics with the range the
model's own training images covered. Export measures those ranges (:func:`fit_gate`) and stores
them in the model's contract under ``"gate"``, so the device never relies on magic numbers and a
retrained model carries ranges that match its data. The refusal policy (:func:`refusal`) turns
the features outside their ranges into one reason a person can act on. :func:`check_film` is
the whole gate for one film: proportions, these statistics, then its orientation
(:mod:`edge_app.orientation`), all measured on the film inside its padding
(:mod:`edge_app.padding`).

Every feature but one is plain numpy on the *preprocessed* ``(s, s)`` uint8 image, exactly what
the model sees, so the statistics do not depend on the file format. Colour is gone at that point,
so ``colourfulness`` is measured while the file is decoded
(:func:`edge_app.preprocessing.colourfulness`, carried by :class:`~edge_app.preprocessing.ModelInput`) and
passed in.

Stability: the feature names, their meaning and the stored format are part of the model contract.
Change any of them only together with :data:`FEATURES_VERSION`; the device must refuse to apply
stored ranges whose ``features_version`` it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from edge_app.contract import ContractError, ModelContract
from edge_app.orientation import MIRROR_CAUTION, MIRRORED, read_box, shape_refusal
from edge_app.padding import content_box

#: Bumped whenever a feature's definition changes; stored beside the ranges. Version 3: every
#: feature is measured on the film's content (:func:`content_box`), not on its padding.
FEATURES_VERSION = 3

#: Every feature, in a stable order; values are floats on the scales documented below.
FEATURE_NAMES = (
    "mean",  # mean intensity, 0..1
    "std",  # intensity standard deviation, 0..1
    "p05",  # 5th percentile of intensity, 0..1
    "p50",  # median intensity, 0..1
    "p95",  # 95th percentile of intensity, 0..1
    "dark_fraction",  # share of pixels <= 12 (near black), 0..1
    "bright_fraction",  # share of pixels >= 243 (near white), 0..1
    "gray_levels",  # distinct gray levels / 256: graphics and screenshots use few, 0..1
    "lr_symmetry",  # correlation of the left half with the mirrored right half, -1..1
    "center_border",  # mean of the central half-box minus mean of the outer 10% frame, -1..1
    "mediastinum_contrast",  # central vertical strip minus both lung strips (mid rows), -1..1
    "edge_energy",  # mean absolute gradient (horizontal + vertical), 0..2
    "texture_ratio",  # mean |Laplacian| / mean |gradient|: fine texture relative to edges, 0..8
    "colourfulness",  # Hasler-Suesstrunk M of the decoded file (64 px copy), 8-bit units, 0 = gray
)

#: Pixels at or below / at or above these count as near black / near white.
DARK_LEVEL = 12
BRIGHT_LEVEL = 243

#: Stored ranges: these quantiles of the training images, widened by ``MARGIN`` x their span.
#: Measured with ``benchmarks/gate_rates.py`` on the Kermany training films at 128 px (ranges
#: fitted on 1000 of them, refusing when any feature is out of range; rates on the 4216 films
#: not used for fitting). Features version 1 (no texture_ratio, no colourfulness): margin 0.2
#: refused 0.76% of films, 0.3 refused 0.47% but accepted a smooth gradient, 0.5 refused 0.12%
#: but accepted 5 of 57 photos and synthetic non-X-rays (cameraman, coins, smooth gradients and
#: noise). Version 2 adds texture_ratio, which refuses those without refusing any more films:
#: margin 0.5 refuses 0.12% of films and all 57; 0.75 refuses 0.02% and accepts one (clock).
QUANTILES = (0.001, 0.999)
MARGIN = 0.5

#: A film may be a little unusual in a few ways; in more than this many at once (features outside
#: their raw training quantiles, before any margin) it is refused even if no single feature is
#: far out. It catches gray photos that are mildly off everywhere (scikit-image's clock: 5
#: features). With the base128 run's exported ranges it refuses no further training film (3 of
#: 5216 either way); with ranges fitted by ``gate_rates.py --fit 1000`` it adds 2 (0.13% ->
#: 0.17%). Stored in the contract beside the ranges.
MAX_UNUSUAL = 3

#: Brightness features whose *high* side is not counted as unusual (their ranges still apply):
#: consolidation, effusion and a white-out lung make a chest film brighter, so a film a little
#: brighter than every training film in several of them at once is most often a very sick child.
#: Both training films that the count refused were such PNEUMONIA films (mean, p50, p95 and
#: bright_fraction just above the training quantiles); the gray photo it is there for (the
#: clock) is darker and smoother, and still refused.
BRIGHTER_IS_DISEASE = ("mean", "p05", "p50", "p95", "bright_fraction")

#: Smallest span a stored range is widened from. Training films are exactly gray (colourfulness
#: 0 on all 5216 Kermany films), which would make a range of width 0 and refuse a gray film that
#: a colour-managed viewer exported with +-1 level of channel noise (colourfulness ~0.9). Hasler
#: & Suesstrunk's scale calls photos below ~15 "not colourful"; a span of 10 puts the limit at 5
#: with margin 0.5: a mild colour cast from photographing a film (~9) is still refused.
MIN_SPANS = {"colourfulness": 10.0}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (no structure to compare)."""
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 1e-12 else 0.0


def image_features(img: np.ndarray, *, colourfulness: float) -> dict[str, float]:
    """The gate statistics of one preprocessed image (2-D uint8), keyed by :data:`FEATURE_NAMES`,
    measured on its :func:`content_box`.

    ``colourfulness`` is the file's :attr:`~edge_app.preprocessing.ModelInput.colourfulness`; it is
    a required argument so that nobody passes 0 for a file whose colours were never measured.

    Geometry-based features assume the film's usual orientation (patient upright, facing the
    viewer): a frontal chest film is roughly left/right symmetric, brighter in the centre
    (mediastinum and spine) than at the lungs, and framed by a darker border.
    """
    img = _checked(img)
    return _box_features(content_box(img), img.shape, colourfulness)


def _checked(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"the gate expects a 2-D uint8 image, got {img.dtype} {img.shape}")
    if min(img.shape) < 16:
        raise ValueError(f"the gate needs at least 16x16 pixels, got {img.shape}")
    return img


def _box_features(img: np.ndarray, square: tuple[int, int], colourfulness: float) -> dict[str, float]:
    """:func:`image_features` of a film's content box ``img`` cut from a ``square``-shaped input."""
    # Edge energy is per pixel, so a film shrunk into a smaller box by its padding is scaled back
    # to the energy it would have filling the square.
    scale = (img.shape[0] + img.shape[1]) / (square[0] + square[1])
    height, width = img.shape
    x = img.astype(np.float64) / 255.0
    p05, p50, p95 = np.percentile(x, (5, 50, 95))

    half = width // 2
    left, right = x[:, :half], x[:, width - half :]

    frame_h, frame_w = max(1, height // 10), max(1, width // 10)
    border = np.ones_like(x, dtype=bool)
    border[frame_h : height - frame_h, frame_w : width - frame_w] = False
    center = x[height // 4 : height - height // 4, width // 4 : width - width // 4]

    rows = x[int(0.3 * height) : int(0.7 * height)]

    def strip(lo: float, hi: float) -> np.ndarray:
        return rows[:, int(lo * width) : max(int(hi * width), int(lo * width) + 1)]

    lungs = np.concatenate([strip(0.15, 0.35), strip(0.65, 0.85)], axis=1)
    mediastinum = strip(0.42, 0.58)

    gradient = np.abs(np.diff(x, axis=0)).mean() + np.abs(np.diff(x, axis=1)).mean()
    # A radiograph always carries fine texture (trabeculae, vessels, quantum noise) in proportion
    # to its edges; drawings, gradients and smooth photos have far less, text and noise far more.
    laplacian = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    texture = float(np.abs(laplacian).mean() / gradient) if gradient > 1e-12 else 0.0
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "p05": float(p05),
        "p50": float(p50),
        "p95": float(p95),
        "dark_fraction": float((img <= DARK_LEVEL).mean()),
        "bright_fraction": float((img >= BRIGHT_LEVEL).mean()),
        "gray_levels": float(np.unique(img).size / 256.0),
        "lr_symmetry": _correlation(left, right[:, ::-1]),
        "center_border": float(center.mean() - x[border].mean()),
        "mediastinum_contrast": float(mediastinum.mean() - lungs.mean()),
        "edge_energy": float(gradient * scale),
        "texture_ratio": texture,
        "colourfulness": float(colourfulness),
    }


def fit_gate(features: Iterable[dict[str, float]], margin: float = MARGIN) -> dict:
    """Robust per-feature ranges from the training images' features, in the contract's format.

    For each feature: ``q_low``/``q_high`` are the 0.1th/99.9th percentiles, and ``low``/``high``
    the same widened by ``margin`` times their span (at least :data:`MIN_SPANS`), so one odd
    training film neither sets the range alone nor is refused by it. ``median`` and ``iqr`` let a
    refusal rule speak in robust z-scores, and the raw quantiles let it choose another margin,
    without re-exporting. Format::

        {"features_version": 2, "n_images": 1000, "quantiles": [0.001, 0.999], "margin": 0.5,
         "max_unusual": 3, "features": {"mean": {"low": .., "high": .., "q_low": .., "q_high": ..,
                               "median": .., "iqr": ..}, ...}}
    """
    rows = list(features)
    if not rows:
        raise ValueError("fit_gate needs the features of at least one image")
    stats = {}
    for name in FEATURE_NAMES:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        q_low, q_high = np.quantile(values, QUANTILES)
        span = max(q_high - q_low, MIN_SPANS.get(name, 0.0))
        q25, q50, q75 = np.quantile(values, (0.25, 0.5, 0.75))
        stats[name] = {
            "low": float(q_low - margin * span),
            "high": float(q_high + margin * span),
            "q_low": float(q_low),
            "q_high": float(q_high),
            "median": float(q50),
            "iqr": float(q75 - q25),
        }
    return {
        "features_version": FEATURES_VERSION,
        "n_images": len(rows),
        "quantiles": list(QUANTILES),
        "margin": float(margin),
        "max_unusual": MAX_UNUSUAL,
        "features": stats,
    }


#: The lowest ``gray_levels`` limit the gate applies, whatever a model's stored range says. Films
#: from the training set have nearly all 256 levels after normalisation, so a fitted range starts
#: near 0.96; but an ordinary frontal film with 233 levels (0.91) was refused as a "screenshot".
#: Screenshots, documents and graphics are caught by texture, edge energy and shape as well, so
#: the floor can sit at half the levels (``benchmarks/gate_rates.py`` measures both sides).
GRAY_LEVELS_FLOOR = 0.5


def _limits(gate: dict) -> dict[str, dict]:
    """The stored ranges as applied: ``gray_levels``' lower limit at most :data:`GRAY_LEVELS_FLOOR`."""
    limits = dict(gate["features"])
    if "gray_levels" in limits:
        stored = limits["gray_levels"]
        limits["gray_levels"] = {**stored, "low": min(stored["low"], GRAY_LEVELS_FLOOR)}
    return limits


def out_of_range(features: dict[str, float], gate: dict) -> list[str]:
    """Names of the features outside the stored ranges (empty list: inside every range).

    Raises ``ValueError`` for ranges made with another feature definition: comparing them would
    refuse or pass images for reasons that no longer hold.
    """
    if gate.get("features_version") != FEATURES_VERSION:
        raise ValueError(
            f"gate statistics use features version {gate.get('features_version')}, "
            f"this device computes version {FEATURES_VERSION}"
        )
    return [
        name
        for name, limits in _limits(gate).items()
        if not limits["low"] <= features[name] <= limits["high"]
    ]


#: Why an image is refused: ``(features, side, reason)`` tried in order, the first whose feature is
#: beyond its stored range on ``side`` names the refusal. Specific causes come before the chest
#: shape, which almost every non-radiograph also lacks.
REASONS = (
    (("colourfulness",), "high", "colour image (a photo or a screenshot?)"),
    (("std",), "low", "blank or nearly uniform image"),
    (("gray_levels",), "low", "too few gray levels (a screenshot, document or graphic?)"),
    (("bright_fraction",), "high", "saturated (too much pure white)"),
    (("dark_fraction",), "high", "saturated (too much pure black)"),
    (("edge_energy", "texture_ratio"), "high", "too much fine detail (text, a screenshot or noise?)"),
    (("edge_energy", "texture_ratio"), "low", "too smooth for a radiograph (a drawing or a gradient?)"),
    (
        ("lr_symmetry", "mediastinum_contrast", "center_border"),
        "any",
        "no frontal chest shape (two lung fields either side of a bright mediastinum)",
    ),
)


class GateUnavailable(ContractError):
    """The model carries no input-gate statistics this device can apply (a model problem, found
    when the model is loaded, so callers that report a bad model report this too)."""


def stored_gate(contract: ModelContract) -> dict:
    """The contract's input-gate statistics (:attr:`ModelContract.gate`), checked before any
    image is seen.

    Raises :class:`GateUnavailable` when they are missing or from another feature definition: a
    gate that silently let everything through would be worse than an error.
    """
    gate = contract.gate
    hint = "re-export the model with pneumoscan-export"
    if not isinstance(gate, dict) or not isinstance(gate.get("features"), dict):
        raise GateUnavailable(f"the model carries no input-gate statistics; {hint}")
    version = gate.get("features_version")
    if version != FEATURES_VERSION:
        raise GateUnavailable(
            f"the model's input-gate statistics are version {version}, this pneumoscan "
            f"computes version {FEATURES_VERSION}; {hint}"
        )
    missing = [name for name in FEATURE_NAMES if name not in gate["features"]]
    if missing:
        raise GateUnavailable(f"the model's input-gate statistics lack {', '.join(missing)}; {hint}")
    # Older files name no preprocessing here: their gate was fitted on the model's own pixels,
    # which is what gate_spec() gives for every normalisation they could have.
    fitted_on, reads = gate.get("preprocessing_id"), contract.preprocess.gate_spec().id
    if fitted_on is not None and fitted_on != reads:
        raise GateUnavailable(
            f"the model's input-gate statistics were fitted on {fitted_on} pixels, this pneumoscan "
            f"gives the gate {reads}; {hint}"
        )
    return gate


def refusal(features: dict[str, float], gate: dict) -> str | None:
    """Why an image with these features is not plausibly a frontal chest radiograph, or None.

    The reason is the first of :data:`REASONS` that applies; features outside their range that no
    reason covers are named as they are. An image inside every range is still refused when more
    than the contract's ``max_unusual`` features lie outside the training quantiles themselves
    (on the bright side of :data:`BRIGHTER_IS_DISEASE` they do not count).
    """
    outside = out_of_range(features, gate)
    limits = _limits(gate)
    if not outside:
        unusual = [
            n
            for n in FEATURE_NAMES
            if features[n] < limits[n]["q_low"] or (features[n] > limits[n]["q_high"] and n not in BRIGHTER_IS_DISEASE)
        ]
        most = gate.get("max_unusual")
        if most is not None and len(unusual) > most:
            return "image statistics unlike the training X-rays (" + ", ".join(unusual) + ")"
        return None
    for names, side, reason in REASONS:
        for name in names:
            if name not in outside:
                continue
            above = features[name] > limits[name]["high"]
            if side == "any" or (side == "high") == above:
                return reason
    return "image statistics unlike the training X-rays (" + ", ".join(n for n in FEATURE_NAMES if n in outside) + ")"


#: The chest-shape refusal (the last of :data:`REASONS`).
NO_CHEST_SHAPE = REASONS[-1][2]
#: The warning for a film whose only unusual statistic is its left-right symmetry, scored positive.
ASYMMETRY_CAUTION = (
    "the film is unusually asymmetric (one-sided disease, an over-exposed band at one edge, or not "
    "a frontal view?); screened because its score is over the threshold: check it is a frontal film"
)


@dataclass(frozen=True)
class GateCheck:
    """What the gate found in one preprocessed film (:func:`check_film`).

    ``refusal``: why the film is refused before it is scored, or None. ``mirrored``: it passed and
    looks mirrored left to right; ``asymmetric``: its left-right symmetry alone is outside the
    training range. Both are decided with the model's score (:meth:`after_score`).

    A film that looks mirrored is refused only when the model calls it negative. The mirror cue is a
    left-right imbalance, and one-sided consolidation makes the same imbalance: all 7 upright
    training films it refused were PNEUMONIA films with a dense right lung, i.e. the refusal fell on
    sick children and told the nurse something untrue ("mirrored"). A refusal exists to stop a wrong
    reading, and the dangerous wrong reading is a negative one that sends a sick child home; a
    positive reading of a possibly mirrored film refers the child to a clinician who reads the film
    anyway, so it is screened with a warning to check the R/L marker (:data:`MIRROR_CAUTION`).
    Measured in ``benchmarks/gate_rates.py``.

    The same holds for symmetry: the one training film the gate still refused
    (``person685_bacteria_2581``, a frontal PNEUMONIA film with an over-exposed band down its left
    edge) was refused for ``lr_symmetry`` alone, and no photo, synthetic non-X-ray or inverted film
    in ``benchmarks/gate_rates.py`` is out of range in ``lr_symmetry`` alone (each is also out in
    mediastinum contrast, texture or brightness). So such a film is refused as "no frontal chest
    shape" when negative and screened with :data:`ASYMMETRY_CAUTION` when positive.
    """

    refusal: str | None
    mirrored: bool = False
    asymmetric: bool = False

    def after_score(self, negative: bool) -> tuple[str | None, str | None]:
        """(refusal, caution) once the model has scored the film, ``negative`` if under its
        threshold: a film that looks mirrored or is asymmetric is refused (:data:`MIRRORED`,
        :data:`NO_CHEST_SHAPE`) when negative and screened with a caution when positive (the class
        docstring says why)."""
        if self.mirrored:
            return (MIRRORED, None) if negative else (None, MIRROR_CAUTION)
        if self.asymmetric:
            return (NO_CHEST_SHAPE, None) if negative else (None, ASYMMETRY_CAUTION)
        return None, None


def _only_asymmetric(features: dict[str, float], gate: dict) -> bool:
    """Whether ``lr_symmetry`` is the film's only feature outside its range and the film would
    pass with a typical symmetry (the max-unusual rule included)."""
    if out_of_range(features, gate) != ["lr_symmetry"]:
        return False
    return refusal({**features, "lr_symmetry": _limits(gate)["lr_symmetry"]["median"]}, gate) is None


def check_film(
    pixels: np.ndarray, colourfulness: float, gate: dict, shape: tuple[int, int] | None = None
) -> GateCheck:
    """The whole gate for one preprocessed film: its proportions (``shape``, the decoded film's
    height and width; a squeezed strip's statistics would mislead), then :func:`refusal` of its
    statistics and measured colourfulness, then its orientation (turned by 90 or 180 degrees),
    and whether it looks mirrored or is asymmetric (both decided with the score). The content box
    and the orientation projections are computed once for all of them."""
    reason = shape_refusal(shape)
    if reason is not None:
        return GateCheck(reason)
    pixels = _checked(pixels)
    box = content_box(pixels)
    features = _box_features(box, pixels.shape, colourfulness)
    reason = refusal(features, gate)
    asymmetric = reason is not None and _only_asymmetric(features, gate)
    if reason is not None and not asymmetric:
        return GateCheck(reason)
    turned, mirrored = read_box(box)
    return GateCheck(turned) if turned is not None else GateCheck(None, mirrored, asymmetric)
