"""Which threshold and uncertain band a result was decided with, and where they came from.

The model file carries the threshold chosen on the training hospital's validation films; a site
profile (:mod:`edge_app.site_profile`) carries one chosen on the site's own films; ``--threshold``
overrides both for one run. Every result names its source (``threshold_source``: ``model``,
``site`` or ``option``) and, for a site profile, the profile's hash, so a result can always be
traced to the rule that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("model", "site", "option")


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    band: tuple[float, float] | None
    source: str = "model"
    profile: str | None = None  # the site profile's hash when source == "site"

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"threshold source {self.source!r} not in {SOURCES}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold {self.threshold} is not inside (0, 1)")
        # --threshold keeps the band it was given, as it always has; a model's or site's own
        # band was chosen around its threshold and must contain it.
        if self.source != "option" and self.band is not None and not self.band[0] <= self.threshold <= self.band[1]:
            raise ValueError(f"uncertain band {self.band} does not contain threshold {self.threshold}")

    @classmethod
    def of_model(cls, contract) -> "OperatingPoint":
        """The model's own threshold and band (a :class:`~edge_app.contract.ModelContract`)."""
        return cls(contract.threshold, contract.uncertain_band, "model")

    def with_threshold(self, threshold: float) -> "OperatingPoint":
        """``--threshold``: this threshold for one run, with the band as it stands."""
        return OperatingPoint(float(threshold), self.band, "option")

    def uncertain(self, probability: float) -> bool:
        return self.band is not None and self.band[0] <= probability <= self.band[1]
