"""The contract a model file carries: what the device must know to use it correctly.

Export appends ``metadata.json`` to the ``.tflite`` file as a zip member. The TFLite interpreter
reads the flatbuffer at the start of the file and ignores the trailing archive, while
:mod:`zipfile` finds the archive from the end, so the file stays a single artefact that cannot
drift apart from its labels, input size, threshold or preprocessing.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from edge_app.preprocessing import PreprocessSpec

METADATA_MEMBER = "metadata.json"
FORMAT = "pneumoscan-model/1"

#: Keys the device cannot work without.
REQUIRED_KEYS = (
    "format",
    "labels",
    "image_size",
    "channels",
    "input_dtype",
    "output",
    "threshold",
    "version",
    "preprocessing",
)

OUTPUT_KINDS = ("logit", "probability")


class ContractError(ValueError):
    """A model file whose contract is missing, malformed or contradicts the model itself."""


@dataclass(frozen=True)
class ModelContract:
    """The parsed, validated contract; ``raw`` keeps every key for ``pneumoscan info``."""

    labels: tuple[str, str]
    preprocess: PreprocessSpec
    channels: int
    input_dtype: str
    output: str
    threshold: float
    version: str
    uncertain_band: tuple[float, float] | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def image_size(self) -> int:
        return self.preprocess.image_size

    @property
    def positive_label(self) -> str:
        return self.labels[1]

    @property
    def negative_label(self) -> str:
        return self.labels[0]

    @classmethod
    def from_dict(cls, data: dict) -> "ModelContract":
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise ContractError(f"model metadata lacks {', '.join(missing)}")
        if data["format"] != FORMAT:
            raise ContractError(f"model metadata format {data['format']!r}, expected {FORMAT!r}")
        labels = tuple(data["labels"])
        if len(labels) != 2 or len(set(labels)) != 2:
            raise ContractError(f"model metadata labels must be two distinct names, got {labels}")
        if data["output"] not in OUTPUT_KINDS:
            raise ContractError(f"model metadata output {data['output']!r} not in {OUTPUT_KINDS}")
        threshold = float(data["threshold"])
        if not 0.0 < threshold < 1.0:
            raise ContractError(f"model metadata threshold {threshold} is not inside (0, 1)")
        try:
            spec = PreprocessSpec.from_dict(data["preprocessing"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"model metadata preprocessing is invalid: {exc}") from None
        if spec.image_size != int(data["image_size"]):
            raise ContractError(
                f"model metadata image_size {data['image_size']} disagrees with its "
                f"preprocessing ({spec.image_size})"
            )
        band = data.get("uncertain_band")
        if band is not None:
            band = (float(band[0]), float(band[1]))
            if not band[0] <= threshold <= band[1]:
                raise ContractError(f"uncertain_band {band} does not contain threshold {threshold}")
        return cls(
            labels=labels,  # type: ignore[arg-type]
            preprocess=spec,
            channels=int(data["channels"]),
            input_dtype=str(data["input_dtype"]),
            output=str(data["output"]),
            threshold=threshold,
            version=str(data["version"]),
            uncertain_band=band,
            raw=dict(data),
        )

    def check_input_details(self, shape: tuple[int, ...], dtype_name: str) -> None:
        """Refuse a model whose interpreter input disagrees with what the contract promises."""
        expected = (1, self.image_size, self.image_size, self.channels)
        if tuple(int(x) for x in shape) != expected:
            raise ContractError(
                f"model input shape {tuple(shape)} contradicts its metadata {expected}"
            )
        if dtype_name != self.input_dtype:
            raise ContractError(
                f"model input type {dtype_name} contradicts its metadata {self.input_dtype}"
            )


def read_metadata(model_path: str | Path) -> dict:
    """Return the raw metadata dict stored in ``model_path``, or raise :class:`ContractError`."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            with archive.open(METADATA_MEMBER) as member:
                return json.load(member)
    except FileNotFoundError:
        raise ContractError(f"model file not found: {model_path}") from None
    except (zipfile.BadZipFile, KeyError):
        raise ContractError(
            f"{model_path} carries no pneumoscan metadata (export it with pneumoscan-export)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{model_path} has unreadable metadata: {exc}") from None


def read_contract(model_path: str | Path) -> ModelContract:
    """Read and validate the contract stored in ``model_path``."""
    return ModelContract.from_dict(read_metadata(model_path))


def write_metadata(model_path: str | Path, metadata: dict) -> None:
    """Append ``metadata`` to ``model_path`` as a zip member and write ``<model>.json`` beside it.

    Appending to a file that is not yet a zip leaves its leading bytes (the flatbuffer) intact.
    """
    ModelContract.from_dict(metadata)  # never write a contract the device would refuse
    text = json.dumps(metadata, indent=2, sort_keys=True)
    with zipfile.ZipFile(model_path, mode="a", compression=zipfile.ZIP_DEFLATED) as archive:
        if METADATA_MEMBER in archive.namelist():
            raise ContractError(f"{model_path} already carries metadata")
        archive.writestr(METADATA_MEMBER, text)
    Path(f"{model_path}.json").write_text(text + "\n", encoding="utf-8")
