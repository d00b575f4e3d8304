"""``site.json``: a site's own threshold and uncertain band, and the model it was made for.

``pneumoscan calibrate`` writes it from the site's labelled films (:mod:`edge_app.calibration`);
``predict``, ``watch`` and ``history`` read it. It records what a reviewer needs to trust it
(the rule, the counts of films, the date, the full table with intervals, the warnings) and what
the device needs to refuse it when it no longer applies: the model version and weight hash it
was calibrated for. A threshold is a property of one model's scores; applied to another model it
would be a number without meaning, so a mismatch stops the command with one line saying so.

Which profile applies: ``--site FILE``, else ``$PNEUMOSCAN_SITE``, else :data:`DEFAULT_SITE` if
that file exists, else none (the model's own threshold). A profile named explicitly (option or
variable) must exist. Results carry the profile's :attr:`SiteProfile.hash`, a SHA-256 over its
canonical JSON, so any edit to the file, however small, shows in every result made with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from edge_app.operating_point import OperatingPoint
from edge_app.paths import write_text_atomically

FORMAT = "pneumoscan-site/1"

ENV_VAR = "PNEUMOSCAN_SITE"


def default_site_path() -> Path:
    """``$XDG_CONFIG_HOME/pneumoscan/site.json`` (``~/.config/pneumoscan/site.json``): the
    device's user configuration, where a profile applies to every command without a flag."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pneumoscan" / "site.json"


DEFAULT_SITE = "$XDG_CONFIG_HOME/pneumoscan/site.json (~/.config/pneumoscan/site.json)"

#: Keys a profile cannot be used without.
REQUIRED_KEYS = ("format", "threshold", "uncertain_band", "model_version", "weights_sha256", "created")


class SiteProfileError(ValueError):
    """A profile that is missing, malformed, or made for another model; ``str()`` is one line."""


@dataclass(frozen=True)
class SiteProfile:
    path: Path | None
    threshold: float
    band: tuple[float, float] | None
    model_version: str
    weights_sha256: str | None  # null for a model whose contract records no weight hash
    created: str
    raw: dict = field(compare=False, repr=False)

    @property
    def hash(self) -> str:
        """First 16 hex digits of SHA-256 over the canonical JSON (sorted keys, no spaces)."""
        return profile_hash(self.raw)

    @property
    def operating_point(self) -> OperatingPoint:
        return OperatingPoint(self.threshold, self.band, "site", self.hash)

    @property
    def expected_share_referred(self) -> tuple[float, float, float] | None:
        """(value, low, high) of the share referred on the calibration films at the threshold."""
        share = self.raw.get("expected", {}).get("share_referred")
        if not share or share.get("value") is None:
            return None
        return float(share["value"]), float(share["low"]), float(share["high"])

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> "SiteProfile":
        where = f"site profile {path}" if path else "site profile"
        if not isinstance(data, dict):
            raise SiteProfileError(f"{where} is not a JSON object")
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise SiteProfileError(f"{where} lacks {', '.join(missing)} (make it with pneumoscan calibrate)")
        if data["format"] != FORMAT:
            raise SiteProfileError(f"{where} has format {data['format']!r}, expected {FORMAT!r}")
        try:
            threshold = float(data["threshold"])
            band = data["uncertain_band"]
            band = None if band is None else (float(band[0]), float(band[1]))
        except (TypeError, ValueError, IndexError):
            raise SiteProfileError(f"{where}: threshold or uncertain_band is not a number") from None
        if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
            raise SiteProfileError(f"{where}: threshold {threshold} is not inside (0, 1)")
        if band is not None and not (0.0 <= band[0] <= threshold <= band[1] <= 1.0):
            raise SiteProfileError(f"{where}: uncertain_band {list(band)} does not contain threshold {threshold}")
        if not isinstance(data["model_version"], str) or not data["model_version"]:
            raise SiteProfileError(f"{where}: model_version must be a non-empty string")
        if not isinstance(data["weights_sha256"], (str, type(None))):
            raise SiteProfileError(f"{where}: weights_sha256 must be a string or null")
        return cls(path, threshold, band, data["model_version"], data["weights_sha256"] or None,
                   str(data["created"]), dict(data))

    def check_model(self, contract) -> None:
        """Refuse to apply this profile with a model (its contract) it was not calibrated for."""
        weights = contract.weights_sha256
        # The weight hash identifies the model; the version string (which embeds a prefix of it)
        # stands in only when one side has no hash.
        if weights and self.weights_sha256:
            same = weights == self.weights_sha256
        else:
            same = contract.version == self.model_version
        if not same:
            where = self.path or "site profile"
            raise SiteProfileError(
                f"site profile {where} was made for model {self.model_version}, not {contract.version}: "
                "run pneumoscan calibrate again with this model, or pass --no-site"
            )


def build_profile(calibration, contract, *, labelled: str, refused: int, created: str | None = None) -> dict:
    """The ``site.json`` dict for a :class:`~edge_app.calibration.Calibration` made with the model
    whose contract is ``contract``. ``labelled`` describes the films (a folder or CSV, no
    per-film names: those can carry patient identifiers); ``refused``: films left out."""
    from datetime import datetime, timezone

    from edge_app import __version__

    at = calibration.recommended
    auc, auc_low, auc_high = calibration.auc
    return {
        "format": FORMAT,
        "threshold": round(calibration.threshold, 8),
        "threshold_rule": calibration.rule,
        "sensitivity_target": calibration.target,
        "sensitivity_rule": "interval" if calibration.confident else "observed",
        "uncertain_band": None if calibration.band is None else [round(x, 8) for x in calibration.band],
        "uncertain_band_rule": calibration.band_rule,
        "model_version": contract.version,
        "weights_sha256": contract.weights_sha256,
        "model_threshold": contract.threshold,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "package_version": __version__,
        "labelled_films": labelled,
        "counts": {**calibration.counts, "refused": int(refused)},
        "expected": {
            "sensitivity": at.sensitivity.to_dict(),
            "specificity": at.specificity.to_dict(),
            "share_referred": at.referred.to_dict(),
            "share_uncertain": calibration.uncertain.to_dict(),
        },
        "auc": {"value": round(auc, 6), "low": round(auc_low, 6), "high": round(auc_high, 6), "method": "DeLong"},
        "table": [row.to_dict() for row in calibration.table],
        "warnings": list(calibration.warnings),
    }


def profile_hash(data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def load_profile(path: str | os.PathLike) -> SiteProfile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SiteProfileError(f"site profile {path} not found") from None
    except IsADirectoryError:
        raise SiteProfileError(f"site profile {path} is a folder; give the site.json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteProfileError(f"site profile {path} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SiteProfileError(f"site profile {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return SiteProfile.from_dict(data, path)


def resolve_site(explicit: str | os.PathLike | None = None, *, disabled: bool = False) -> SiteProfile | None:
    """The profile that applies (see the module docstring), or ``None`` for the model's own."""
    if disabled:
        return None
    if explicit:
        return load_profile(explicit)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return load_profile(from_env)
    default = default_site_path()
    return load_profile(default) if default.is_file() else None


def operating_point(contract, profile: SiteProfile | None, threshold: float | None = None) -> OperatingPoint:
    """What a command decides with: ``--threshold`` over the site profile over the model's own.
    Raises :class:`SiteProfileError` for a profile made for another model."""
    point = OperatingPoint.of_model(contract)
    if profile is not None:
        profile.check_model(contract)
        point = profile.operating_point
    return point if threshold is None else point.with_threshold(threshold)


def write_profile(data: dict, path: str | os.PathLike, *, force: bool = False) -> SiteProfile:
    """Validate ``data`` and write it to ``path`` whole (a temporary file, then a link or a rename):
    a crash never leaves half a profile, and without ``force`` an existing file is never replaced,
    even one that appears while this runs."""
    path = Path(path)
    profile = SiteProfile.from_dict(data, path)  # never write what the device would refuse
    if path.is_dir():
        raise SiteProfileError(f"{path} is a folder; give a file name such as {path / 'site.json'}")
    if not path.parent.is_dir():
        raise SiteProfileError(f"folder {path.parent} does not exist")
    if (path.exists() or path.is_symlink()) and not force:
        raise SiteProfileError(f"{path} already exists; refusing to overwrite it (use --force)")
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        write_text_atomically(path, text, replace=force)
    except FileExistsError:
        raise SiteProfileError(f"{path} already exists; refusing to overwrite it (use --force)") from None
    return profile


def describe_active(contract, explicit: str | os.PathLike | None = None, *, disabled: bool = False) -> dict:
    """What ``pneumoscan info`` shows: the profile that applies and the threshold it gives, or
    why none does. Never raises: a broken or foreign profile is shown with the reason (``predict``
    and ``watch`` would refuse it)."""
    point = OperatingPoint.of_model(contract)
    where = "--no-site" if disabled else str(explicit) if explicit else (
        f"${ENV_VAR}" if os.environ.get(ENV_VAR) else str(default_site_path())
    )
    try:
        profile = resolve_site(explicit, disabled=disabled)
        if profile is not None:
            point = operating_point(contract, profile)
    except SiteProfileError as exc:
        return {"active": False, "looked_at": where, "error": str(exc), "threshold_source": "refused"}
    if profile is None:
        return {"active": False, "looked_at": where, "threshold": point.threshold, "threshold_source": "model"}
    return {
        "active": True,
        "path": str(profile.path),
        "hash": profile.hash,
        "threshold": profile.threshold,
        "threshold_source": "site",
        "threshold_rule": profile.raw.get("threshold_rule"),
        "uncertain_band": None if profile.band is None else list(profile.band),
        "created": profile.created,
        "counts": profile.raw.get("counts"),
        "model_version": profile.model_version,
        "warnings": profile.raw.get("warnings", []),
    }
