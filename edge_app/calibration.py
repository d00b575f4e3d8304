"""A site's own operating point, from its own labelled films: the table, the rule, the warnings.

The model's threshold was chosen on the training hospital's validation films. Another site's
machines, framing, exposure and children move the scores, so the same threshold can refer far
more healthy children there (or, worse, miss more pneumonia). WHO's guidance for computer-aided
chest X-ray reading is to set the threshold per setting on local films and keep watching it.

Given each film's reference label and the model's probability, :func:`calibrate` reports, at a
few candidate thresholds, sensitivity, specificity, PPV, NPV and the share referred, each with a
95% Wilson interval, and the AUC with its DeLong interval; recommends a threshold by one stated
rule (:func:`edge_app.thresholds.threshold_for_sensitivity`: the highest specificity whose
sensitivity stays at or above the target; with ``confident``, whose 95% sensitivity interval does,
:func:`edge_app.thresholds.threshold_for_confident_sensitivity`, which on a few hundred films
is the difference between a promise the films support and one they merely do not contradict);
sets the uncertain band by the rule export uses
(:func:`edge_app.thresholds.uncertain_band`); and says plainly when the films are too few for
the rule to mean much. Plain numpy; screening the films is the caller's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from edge_app.intervals import auc_interval, wilson_interval
from edge_app.thresholds import threshold_for_confident_sensitivity, threshold_for_sensitivity, uncertain_band

DEFAULT_SENSITIVITY = 0.95

#: Below this many films of a class, a sensitivity or specificity is known only to about +-0.1.
MIN_FILMS_PER_CLASS = 50

#: The table also shows where the same rule would put the threshold for these targets.
TABLE_TARGETS = (0.80, 0.85, 0.90, 0.95, 0.97, 0.98, 0.99)


def rule_text(target: float, confident: bool = False) -> str:
    if confident:
        return f"highest specificity whose 95% sensitivity interval stays >= {target:g} on the site's labelled films"
    return f"highest specificity with sensitivity >= {target:g} on the site's labelled films"


@dataclass(frozen=True)
class Proportion:
    """``k`` out of ``n`` with its 95% Wilson interval (``value`` is ``nan`` when ``n == 0``)."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {"value": _num(self.value), "low": _num(low), "high": _num(high), "k": self.k, "n": self.n}


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 6)  # NaN -> null in JSON


@dataclass(frozen=True)
class OperatingRow:
    """The figures at one candidate threshold; ``why`` says why it is in the table."""

    threshold: float
    why: tuple[str, ...]
    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def sensitivity(self) -> Proportion:
        return Proportion(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> Proportion:
        return Proportion(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> Proportion:
        return Proportion(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> Proportion:
        return Proportion(self.tn, self.tn + self.fn)

    @property
    def referred(self) -> Proportion:
        return Proportion(self.tp + self.fp, self.tp + self.fn + self.fp + self.tn)

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / max(1, self.tp + self.fn + self.fp + self.tn)

    def to_dict(self) -> dict:
        return {
            "threshold": round(self.threshold, 6),
            "why": list(self.why),
            "confusion": {"tp": self.tp, "fn": self.fn, "fp": self.fp, "tn": self.tn},
            "sensitivity": self.sensitivity.to_dict(),
            "specificity": self.specificity.to_dict(),
            "ppv": self.ppv.to_dict(),
            "npv": self.npv.to_dict(),
            "share_referred": self.referred.to_dict(),
            "accuracy": _num(self.accuracy),
        }


def operating_row(labels: np.ndarray, scores: np.ndarray, threshold: float, why=()) -> OperatingRow:
    """Counts at ``threshold`` (a film is referred when its score is ``>=`` it)."""
    referred = scores >= threshold
    return OperatingRow(
        threshold=float(threshold),
        why=tuple(why),
        tp=int((referred & labels).sum()),
        fn=int((~referred & labels).sum()),
        fp=int((referred & ~labels).sum()),
        tn=int((~referred & ~labels).sum()),
    )


@dataclass(frozen=True)
class Calibration:
    """Everything ``pneumoscan calibrate`` reports and ``site.json`` keeps."""

    target: float
    threshold: float
    band: tuple[float, float] | None
    band_rule: str
    model_threshold: float
    counts: dict[str, int]
    auc: tuple[float, float, float]
    table: tuple[OperatingRow, ...]
    uncertain: Proportion = Proportion(0, 0)  # films inside the band
    warnings: tuple[str, ...] = field(default=())
    confident: bool = False  # the rule holds the sensitivity interval, not the observed value, to the target

    @property
    def rule(self) -> str:
        return rule_text(self.target, self.confident)

    @property
    def recommended(self) -> OperatingRow:
        return next(row for row in self.table if "recommended" in row.why)

    @property
    def at_model_threshold(self) -> OperatingRow:
        return next(row for row in self.table if "model" in row.why)


def _sample_warnings(
    recommended: OperatingRow, target: float, labels: tuple[str, str], confident: bool, met: bool
) -> list[str]:
    """Plain sentences for a supervisor: when is this recommendation too thin to lean on."""
    out = []
    negatives, positives = recommended.tn + recommended.fp, recommended.tp + recommended.fn
    for name, count, figure in ((labels[1], positives, "sensitivity"), (labels[0], negatives, "specificity")):
        if count < MIN_FILMS_PER_CLASS:
            low, high = getattr(recommended, figure).interval
            out.append(
                f"only {count} {name} films: the {figure} at the recommended threshold is known only "
                f"to within {low:.2f}-{high:.2f}; calibrate on at least {MIN_FILMS_PER_CLASS} of each class"
            )
    sens = recommended.sensitivity
    low, high = sens.interval
    if confident and not met:
        out.append(
            f"{positives} {labels[1]} films are too few for the 95% sensitivity interval to clear "
            f"{target:g} even with none missed: the threshold refers every {labels[1]} film here"
        )
    elif low < target:
        out.append(
            f"sensitivity at the recommended threshold is {sens.value:.3f} (95% interval "
            f"{low:.3f}-{high:.3f}): its lower end is below the {target:g} target, so on films like "
            f"these the true sensitivity may be lower; more {labels[1]} films narrow the interval, "
            "and --confident picks the threshold whose interval clears the target (row 'confident')"
        )
    return out


def calibrate(
    labels,
    scores,
    *,
    model_threshold: float,
    target: float = DEFAULT_SENSITIVITY,
    class_names: tuple[str, str] = ("NORMAL", "PNEUMONIA"),
    confident: bool = False,
) -> Calibration:
    """The site's operating point from reference ``labels`` (1 = pneumonia) and ``scores``
    (the model's probabilities). ``confident``: recommend by the interval's lower end
    (:func:`~edge_app.thresholds.threshold_for_confident_sensitivity`). Raises ``ValueError``
    without both classes."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.shape[0]} labels but {scores.shape[0]} scores")
    if labels.all() or not labels.any():
        raise ValueError("calibration needs films of both classes")
    if not 0.5 <= target < 1.0:
        raise ValueError(f"sensitivity target {target} must be in [0.5, 1)")
    # A site threshold of exactly 0 or 1 would refer everyone or no one; keep it inside (0, 1).
    inside = lambda t: float(np.clip(t, 1e-6, 1 - 1e-6))  # noqa: E731
    plain = inside(threshold_for_sensitivity(labels, scores, target))
    sure, met = threshold_for_confident_sensitivity(labels, scores, target)
    sure = inside(sure)
    threshold = sure if confident else plain
    band, band_rule = uncertain_band(labels, scores, threshold)

    candidates: dict[float, list[str]] = {}

    def add(value: float, why: str) -> None:
        key = next((t for t in candidates if abs(t - value) < 1e-9), float(value))
        candidates.setdefault(key, []).append(why)

    add(threshold, "recommended")
    add(model_threshold, "model")
    add(sure, "confident")
    for level in TABLE_TARGETS:
        add(inside(threshold_for_sensitivity(labels, scores, level)), f"sensitivity >= {level:g}")
    table = tuple(operating_row(labels, scores, t, why) for t, why in sorted(candidates.items()))
    calibration = Calibration(
        target=float(target),
        threshold=threshold,
        band=None if band is None else (float(band[0]), float(band[1])),
        band_rule=band_rule,
        model_threshold=float(model_threshold),
        confident=bool(confident),
        counts={class_names[0]: int((~labels).sum()), class_names[1]: int(labels.sum())},
        auc=auc_interval(labels, scores),
        table=table,
        uncertain=Proportion(
            0 if band is None else int(((scores >= band[0]) & (scores <= band[1])).sum()), len(scores)
        ),
    )
    warnings = _sample_warnings(calibration.recommended, target, class_names, confident, met)
    return replace(calibration, warnings=tuple(warnings))


@dataclass(frozen=True)
class ScreenedFilms:
    """The labelled films the model scored, and the ones it could not (left out of the figures)."""

    labels: np.ndarray  # 1 = the positive class
    scores: np.ndarray
    refused: tuple[tuple[str, str], ...]  # (path, reason)


def screen_labelled(labelled, screen: Callable[[str], object]) -> ScreenedFilms:
    """Score every film of a :class:`~edge_app.labelled_set.LabelledSet` with ``screen`` (path ->
    result with ``ok``, ``probability``, ``error``): the same entry point ``predict`` uses, so the
    input gate refuses here what it would refuse in the clinic, and those films are left out."""
    positive = labelled.labels[1]
    labels, scores, refused = [], [], []
    for film in labelled.films:
        result = screen(film.path)
        if not result.ok:
            refused.append((film.path, result.error))
            continue
        labels.append(film.label == positive)
        scores.append(result.probability)
    return ScreenedFilms(np.array(labels, dtype=bool), np.array(scores, dtype=np.float64), tuple(refused))


def _cell(p: Proportion) -> str:
    if not p.n:
        return f"{'-':^17}"
    low, high = p.interval
    return f"{p.value:5.3f} ({low:.2f}-{high:.2f})"


def _why(tags: tuple[str, ...]) -> str:
    """``recommended, rule at sensitivity 0.9/0.95`` rather than one phrase per target."""
    levels = [t.removeprefix("sensitivity >= ") for t in tags if t.startswith("sensitivity >= ")]
    words = [t for t in tags if not t.startswith("sensitivity >= ")]
    if levels:
        words.append(f"rule at sensitivity {'/'.join(levels)}")
    return ", ".join(words)


def format_table(calibration: Calibration) -> str:
    """The table for a person: one row per candidate threshold, lowest first."""
    head = f"{'THRESHOLD':>9}  {'SENSITIVITY':<17}  {'SPECIFICITY':<17}  {'PPV':<17}  {'NPV':<17}  {'REFERRED':<17}  WHY"
    lines = [head]
    for row in calibration.table:
        lines.append(
            f"{row.threshold:9.4f}  {_cell(row.sensitivity)}  {_cell(row.specificity)}  {_cell(row.ppv)}  "
            f"{_cell(row.npv)}  {_cell(row.referred)}  {_why(row.why)}"
        )
    auc, low, high = calibration.auc
    lines.append("")
    if low == high:  # DeLong's variance is 0 when no normal film outscores any pneumonia film
        lines.append(f"AUC {auc:.3f} (the classes do not overlap here: DeLong gives no interval); "
                     "intervals above are 95% Wilson.")
    else:
        lines.append(f"AUC {auc:.3f} (95% interval {low:.3f}-{high:.3f}, DeLong); intervals above are 95% Wilson.")
    return "\n".join(lines) + "\n"
