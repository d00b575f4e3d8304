"""Is the film upright, and is it the right way round? The input gate's orientation checks.

A model trained on upright films scores an upside-down or sideways one as it would any odd
picture (in the hostile field test 92 of 99 normal films turned 180 degrees came out
PNEUMONIA), and a wrong EXIF tag is enough to turn one. The gate's statistics
(:mod:`edge_app.gate`) are nearly blind to it: most are symmetric under a turn. So the gate also
compares the film's asymmetries with those of the mean upright training film (``orientation.json``, made by
``scripts/fit_orientation_template.py``): on a 16 x 16 view, (film - film turned 90 degrees)
projected on (template - template turned 90 degrees) is clearly positive for an upright film and
clearly negative for a sideways one; likewise for 180 degrees (abdomen and diaphragm below the
lungs, shoulders above). That template projection missed 4.3% of films turned by 180 degrees, so
the view's half-turn antisymmetric part also goes through a linear discriminant fitted on
training films (``orientation.json``'s ``upside_down``); either one refuses (the discriminant
alone as "upside down or mirrored": it reads the heart's side too). A mirror image differs only in small things (heart, aortic knob,
stomach gas, the diaphragm's height), so the view's left-right antisymmetric part goes through a
linear discriminant fitted on training films instead (``orientation.json``'s ``mirror``, with
its threshold). A film without such asymmetries (nearly symmetric) scores near 0 and is not
refused on this ground.

Measured with ``benchmarks/gate_rates.py --model edge_app/models/pneumoscan-int8.tflite`` on
the 5216 Kermany training films (template fitted on 1000 of them): see the module's figures
there; thresholds chosen to keep false refusals of upright films far below 0.5% together.
Orientation is refused, not corrected: a mirrored film cannot be told from dextrocardia, and a
silent turn would put a wrong picture in front of the clinician.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from edge_app.padding import content_box

ORIENTATION_FILE = Path(__file__).resolve().parent / "orientation.json"
ORIENTATION_SIDE = 16

#: Refuse when the projection is below these (see above); upright films lie far above them. The
#: mirror score's threshold is fitted with its discriminant and stored beside it (the 0.1%
#: quantile of the fitting films). Every refusal of a real, upright film is a child the nurse
#: cannot screen, so the thresholds sit where almost no upright training film falls. Scored on
#: all 5216 training films, upright, turned and mirrored (``benchmarks/gate_rates.py``): the
#: upside-down limit -0.1 refused 6 upright films and 99.0% of films turned 180 degrees, -0.2
#: refuses 1 and 95.8%; the mirror
#: limit at the 0.25% quantile refused 11 upright films and 67% of mirrored ones, at 0.1% about
#: half as many upright films and about 54% of mirrored ones. A turned film also fails other
#: checks, and a mirrored one changes this model's decision on 8% of films: the refusal guards
#: the heatmap's side and a wrong picture more than the score.
SIDEWAYS_BELOW = 0.0
UPSIDE_DOWN_BELOW = -0.2

#: Longer side over shorter side of the decoded film above which it is not a chest film (a strip,
#: a panorama, a cropped label): chest films are 0.8..1.25, detectors at most ~1.25 either way.
MAX_ASPECT = 2.5


def orientation_view(pixels: np.ndarray) -> np.ndarray:
    """The film's :func:`~edge_app.padding.content_box` as ``ORIENTATION_SIDE`` square box means,
    z-scored (float64)."""
    return _box_view(content_box(np.asarray(pixels, np.uint8)))


def _box_view(box: np.ndarray) -> np.ndarray:
    small = np.asarray(
        Image.fromarray(np.ascontiguousarray(box)).resize((ORIENTATION_SIDE, ORIENTATION_SIDE), Image.Resampling.BOX),
        np.float64,
    )
    return (small - small.mean()) / (small.std() + 1e-9)


def upside_down_part(view: np.ndarray) -> np.ndarray:
    """The top half of ``view - view turned by 180 degrees``: all of its asymmetry under a half turn."""
    return (view - np.rot90(view, 2))[: ORIENTATION_SIDE // 2].ravel()


def mirror_part(view: np.ndarray) -> np.ndarray:
    """The left half of ``view - view mirrored``: all of the view's left-right asymmetry."""
    return (view - view[:, ::-1])[:, : ORIENTATION_SIDE // 2].ravel()


@lru_cache(maxsize=1)
def _template_axes() -> dict:
    stored = json.loads(ORIENTATION_FILE.read_text())
    template = np.asarray(stored["template"], np.float64)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    return {
        "rot90": unit(template - np.rot90(template)),
        "rot270": unit(template - np.rot90(template, 3)),
        "rot180": unit(template - np.rot90(template, 2)),
        "mirror": np.asarray(stored["mirror"]["axis"], np.float64),
        "mirror_below": float(stored["mirror"]["refuse_below"]),
        "upside_down": np.asarray(stored["upside_down"]["axis"], np.float64),
        "upside_down_below": float(stored["upside_down"]["refuse_below"]),
    }


def orientation_scores(pixels: np.ndarray) -> dict[str, float]:
    """``sideways``, ``upside_down`` (template), ``upside_down_fisher``, ``mirrored``: how upright
    the film looks on each count (positive: upright, negative: turned that way)."""
    return _view_scores(orientation_view(pixels))


def _view_scores(view: np.ndarray) -> dict[str, float]:
    axes = _template_axes()
    scale = float(ORIENTATION_SIDE)  # |view| for a z-scored view

    def project(turned: np.ndarray, axis: str) -> float:
        return float((view - turned).ravel() @ axes[axis].ravel()) / scale

    return {
        "sideways": min(project(np.rot90(view), "rot90"), project(np.rot90(view, 3), "rot270")),
        "upside_down": project(np.rot90(view, 2), "rot180"),
        "upside_down_fisher": float(upside_down_part(view) @ axes["upside_down"]),
        "mirrored": float(mirror_part(view) @ axes["mirror"]),
    }


def shape_refusal(shape: tuple[int, int] | None) -> str | None:
    """Why a film of this decoded (height, width) is not of chest proportions, or None."""
    if shape is None:
        return None
    long, short = max(shape), max(1, min(shape))
    if long / short > MAX_ASPECT:
        return f"extreme aspect ratio ({long / short:.1f}:1, a chest film is at most {MAX_ASPECT:g}:1)"
    return None


def orientation_refusal(pixels: np.ndarray, shape: tuple[int, int] | None = None) -> str | None:
    """Why a film is not an upright frontal film of chest proportions, or None (a mirror image
    is decided with the model's score: :meth:`edge_app.gate.GateCheck.after_score`). ``shape``:
    the decoded film's (height, width) before the square resize."""
    return shape_refusal(shape) or _turned(orientation_scores(pixels))


def read_box(box: np.ndarray) -> tuple[str | None, bool]:
    """(why the film in this content box is turned by 90 or 180 degrees, or None; whether it looks
    mirrored left to right): both from one view and one set of projections."""
    scores = _view_scores(_box_view(box))
    return _turned(scores), _mirrored(scores)


def _turned(scores: dict[str, float]) -> str | None:
    if scores["sideways"] < SIDEWAYS_BELOW:
        return "rotated by 90 degrees (turn it upright, or check the EXIF orientation)"
    if scores["upside_down"] < UPSIDE_DOWN_BELOW:
        return "upside down (rotated by 180 degrees)"
    if scores["upside_down_fisher"] < _template_axes()["upside_down_below"]:
        # The discriminant reads the heart's side too, so a mirrored film can land here (2% did).
        return TURNED_OR_MIRRORED
    return None


#: The refusal by the upside-down discriminant alone: turned by 180 degrees or mirrored.
TURNED_OR_MIRRORED = "upside down or mirrored (its top-bottom and left-right cues are not an upright film's)"
#: The refusal of a film that looks mirrored and is scored negative (:class:`edge_app.gate.GateCheck`).
MIRRORED = "mirrored left to right (heart shadow on the wrong side)"
#: The warning for a film that looks mirrored and is scored positive, so it is screened.
MIRROR_CAUTION = (
    "the film may be mirrored left to right (check the R/L marker); screened because its score is "
    "over the threshold, and a heatmap's sides follow the film as given"
)


def _mirrored(scores: dict[str, float]) -> bool:
    return scores["mirrored"] < _template_axes()["mirror_below"]
