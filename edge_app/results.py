"""What one screened image produces, and the words a nurse reads for it.

A result never states a diagnosis: it says how likely signs of pneumonia are and what to do next.
Scores inside the model's uncertain band (chosen on validation and stored in its contract) are
reported as uncertain, because there the model's call is close to a coin toss at the threshold.
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
) -> Result:
    """Build a successful result; ``threshold`` overrides the contract's (the CLI flag)."""
    threshold = contract.threshold if threshold is None else float(threshold)
    label = contract.positive_label if probability >= threshold else contract.negative_label
    band = contract.uncertain_band
    uncertain = bool(band is not None and band[0] <= probability <= band[1])
    return Result(
        path=path,
        probability=round(float(probability), 6),
        score=int(round(100 * float(probability))),
        label=label,
        uncertain=uncertain,
        threshold=threshold,
        model_version=contract.version,
        latency_ms=None if latency_ms is None else round(latency_ms, 2),
    )


#: The dash between what the score says and what to do, as in the clinic's written guidance.
DASH = "\u2014"


def advice(result: Result, positive_label: str = "PNEUMONIA") -> str:
    """One plain-language line for the table format; never phrased as a diagnosis.

    It says how likely signs of pneumonia are and what to do next; inside the uncertain band it
    says only that a clinician must look, whichever side of the threshold the score fell.
    """
    if not result.ok:
        return f"Could not screen: {result.error}"
    score = f"(score {result.score}/100)"
    if result.uncertain:
        return f"Uncertain {DASH} needs review by a clinician {score}"
    if result.label == positive_label:
        return f"Signs of pneumonia likely {score} {DASH} refer for clinical review"
    return f"No signs of pneumonia found {score} {DASH} use clinical judgement"
