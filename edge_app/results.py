"""What one screened image produces, and the words a nurse reads for it.

A result never states a diagnosis: it says how likely signs of pneumonia are and what to do next.
Scores inside the uncertain band are reported as uncertain, because there the model's call is
close to a coin toss at the threshold. Threshold and band are the model's own (chosen on its
validation films and stored in its contract) or a site profile's (chosen on the site's own films,
:mod:`edge_app.site_profile`); ``threshold_source`` says which (``model``, ``site``, or
``option`` for ``--threshold``) and ``site_profile`` names the profile by its hash.

A model with a pattern head (:class:`~edge_app.contract.PatternHead`) adds two fields to every
successful result: ``pattern``, the most likely pattern label of a film at or over the threshold
(``"bacterial"`` / ``"viral"`` for the Kermany pattern model), and ``pattern_score``, 0-100, the
model's probability of *that* pattern (so never below 50 with two patterns); both are null for a
film under the threshold, and absent for a two-class model. They are a radiographic pattern only,
never a reason to give or withhold antibiotics (docs/pattern.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edge_app.contract import ModelContract
from edge_app.operating_point import OperatingPoint


@dataclass
class Result:
    path: str
    probability: float | None = None
    score: int | None = None
    label: str | None = None
    uncertain: bool | None = None
    threshold: float | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)
    # Which rule decided (see the module docstring); after the older fields so that results
    # built positionally keep their meaning.
    threshold_source: str | None = None
    site_profile: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def pattern(self) -> str | None:
        return self.extra.get("pattern")

    @property
    def pattern_score(self) -> int | None:
        return self.extra.get("pattern_score")

    def to_dict(self) -> dict:
        """The JSON shape: successful results omit ``error``; failed ones carry only path+error."""
        if self.error is not None:
            return {"path": self.path, "error": self.error, **self.extra}
        data = asdict(self)
        data.pop("error")
        data.pop("extra")
        return {**data, **self.extra}


def make_result(
    path: str,
    probability: float,
    contract: ModelContract,
    threshold: float | None = None,
    latency_ms: float | None = None,
    *,
    point: OperatingPoint | None = None,
    pattern: tuple[float, ...] | None = None,
) -> Result:
    """Build a successful result decided at ``point`` (default: the model's own threshold and
    band); ``threshold`` is a shorthand for the model's point with that threshold (``--threshold``).
    ``pattern``: P(each pattern label) (:attr:`edge_app.classifier.Reading.pattern`), used only
    for a film at or over the threshold of a model with a pattern head."""
    if point is None:
        point = OperatingPoint.of_model(contract)
    if threshold is not None:
        point = point.with_threshold(threshold)
    label = contract.positive_label if probability >= point.threshold else contract.negative_label
    extra = {}
    if contract.pattern is not None:
        named = score = None
        if label == contract.positive_label and pattern is not None:
            best = max(range(len(pattern)), key=lambda i: pattern[i])
            named, score = contract.pattern.labels[best], int(round(100 * float(pattern[best])))
        extra = {"pattern": named, "pattern_score": score}
    return Result(
        path=path,
        probability=round(float(probability), 6),
        score=int(round(100 * float(probability))),
        label=label,
        uncertain=point.uncertain(probability),
        threshold=point.threshold,
        threshold_source=point.source,
        site_profile=point.profile,
        model_version=contract.version,
        latency_ms=None if latency_ms is None else round(latency_ms, 2),
        extra=extra,
    )


#: The dash between what the score says and what to do, as in the clinic's written guidance.
DASH = "\u2014"


def pattern_shown(result: Result, words: dict[str, str] | None = None) -> str | None:
    """What a result's pattern is called for a person: ``words`` maps a pattern label to it (the
    contract's ``display``); the Kermany labels read as "<label> pneumonia" without it."""
    if result.pattern is None:
        return None
    return (words or {}).get(result.pattern) or f"{result.pattern} pneumonia"


def pattern_words(result: Result, words: dict[str, str] | None = None) -> str:
    """``"; pattern more like bacterial pneumonia (71/100)"`` for a result with a pattern, else
    ``""`` (:func:`pattern_shown` names the pattern)."""
    shown = pattern_shown(result, words)
    return "" if shown is None else f"; pattern more like {shown} ({result.pattern_score}/100)"


#: The result field (JSON, CSV, audit log, the page) holding what to check before trusting a
#: result that was screened anyway: today only :data:`edge_app.orientation.MIRROR_CAUTION`.
CAUTION = "caution"


def caution_words(result: Result) -> str:
    """``"; check: the film may be mirrored left to right (check the R/L marker)"`` for a result
    screened with a caution (:data:`CAUTION`: its first clause), else ``""``."""
    caution = result.extra.get(CAUTION)
    return f"; check: {caution.split(';')[0]}" if caution else ""


def advice(result: Result, positive_label: str = "PNEUMONIA", pattern_display: dict[str, str] | None = None) -> str:
    """One plain-language line for the table format; never phrased as a diagnosis.

    It says how likely signs of pneumonia are and what to do next; inside the uncertain band it
    says only that a clinician must look, whichever side of the threshold the score fell. A film
    over the threshold of a pattern model ends with the pattern it looks more like
    (:func:`pattern_words`): a radiographic pattern, not a cause and not a treatment decision;
    a result screened with a caution ends with what to check (:func:`caution_words`).
    """
    if not result.ok:
        return f"Could not screen: {result.error}"
    score = f"(score {result.score}/100)"
    pattern = pattern_words(result, pattern_display) + caution_words(result)
    if result.uncertain:
        return f"Uncertain {DASH} needs review by a clinician {score}{pattern}"
    if result.label == positive_label:
        return f"Signs of pneumonia likely {score} {DASH} refer for clinical review{pattern}"
    return f"No signs of pneumonia found {score} {DASH} use clinical judgement"
