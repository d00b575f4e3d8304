"""What one screened image produces, and the words a nurse reads for it.

A result never states a diagnosis: it says how likely signs of pneumonia are and what to do next.
Scores inside the uncertain band are reported as uncertain, because there the model's call is
close to a coin toss at the threshold. Threshold and band are the model's own (chosen on its
validation films and stored in its contract) or a site profile's (chosen on the site's own films,
:mod:`edge_app.site_profile`); ``threshold_source`` says which (``model``, ``site``, or
``option`` for ``--threshold``) and ``site_profile`` names the profile by its hash.
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
) -> Result:
    """Build a successful result decided at ``point`` (default: the model's own threshold and
    band); ``threshold`` is a shorthand for the model's point with that threshold (``--threshold``)."""
    if point is None:
        point = OperatingPoint.of_model(contract)
    if threshold is not None:
        point = point.with_threshold(threshold)
    label = contract.positive_label if probability >= point.threshold else contract.negative_label
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
