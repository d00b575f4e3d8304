"""What one screened image produces, and the words a nurse reads for it.

A result never states a diagnosis: it says how likely signs of pneumonia are and what to do next.
Scores inside the model's uncertain band (chosen on validation and stored in its contract) are
reported as uncertain, because there the model's call is close to a coin toss at the threshold.

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
    pattern: tuple[float, ...] | None = None,
) -> Result:
    """Build a successful result; ``threshold`` overrides the contract's (the CLI flag).
    ``pattern``: P(each pattern label) (:attr:`edge_app.classifier.Reading.pattern`), used only
    for a film at or over the threshold of a model with a pattern head."""
    threshold = contract.threshold if threshold is None else float(threshold)
    label = contract.positive_label if probability >= threshold else contract.negative_label
    band = contract.uncertain_band
    uncertain = bool(band is not None and band[0] <= probability <= band[1])
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
        uncertain=uncertain,
        threshold=threshold,
        model_version=contract.version,
        latency_ms=None if latency_ms is None else round(latency_ms, 2),
        extra=extra,
    )


#: The dash between what the score says and what to do, as in the clinic's written guidance.
DASH = "\u2014"


def pattern_words(result: Result, words: dict[str, str] | None = None) -> str:
    """``"; pattern more like bacterial pneumonia (71/100)"`` for a result with a pattern, else
    ``""``. ``words`` maps a pattern label to what is shown (the contract's ``display``); the
    Kermany labels read as "<label> pneumonia" without it."""
    if result.pattern is None:
        return ""
    shown = (words or {}).get(result.pattern) or f"{result.pattern} pneumonia"
    return f"; pattern more like {shown} ({result.pattern_score}/100)"


def advice(result: Result, positive_label: str = "PNEUMONIA", pattern_display: dict[str, str] | None = None) -> str:
    """One plain-language line for the table format; never phrased as a diagnosis.

    It says how likely signs of pneumonia are and what to do next; inside the uncertain band it
    says only that a clinician must look, whichever side of the threshold the score fell. A film
    over the threshold of a pattern model ends with the pattern it looks more like
    (:func:`pattern_words`): a radiographic pattern, not a cause and not a treatment decision.
    """
    if not result.ok:
        return f"Could not screen: {result.error}"
    score = f"(score {result.score}/100)"
    pattern = pattern_words(result, pattern_display)
    if result.uncertain:
        return f"Uncertain {DASH} needs review by a clinician {score}{pattern}"
    if result.label == positive_label:
        return f"Signs of pneumonia likely {score} {DASH} refer for clinical review{pattern}"
    return f"No signs of pneumonia found {score} {DASH} use clinical judgement"
