"""The contract a model file carries: what the device must know to use it correctly.

Export appends ``metadata.json`` to the ``.tflite`` file as a zip member. The TFLite interpreter
reads the flatbuffer at the start of the file and ignores the trailing archive, while
:mod:`zipfile` finds the archive from the end, so the file stays a single artefact that cannot
drift apart from its labels, input size, threshold or preprocessing.

The stored JSON is parsed once, by :meth:`ModelContract.from_dict`, into the typed fields every
consumer reads: the classifier (input, outputs, heatmap output), the screener and results
(labels, threshold, uncertain band, version), the input gate (``gate``), ``pneumoscan info``
(``raw``). Nothing else opens the metadata.
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


def check_threshold(value: float) -> float:
    """``value`` as a float if it is a usable decision threshold (strictly between 0 and 1),
    else ``ValueError`` saying so; the one check for the contract, the CLI and the screener."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{value:g} is not between 0 and 1 (exclusive)")
    return value


@dataclass(frozen=True)
class OutputSpec:
    """One model output the contract describes (``outputs.<name>`` in the metadata)."""

    name: str  #: the tensor name the converter gave it
    position: int | None  #: its index in the interpreter's output list, as exported
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelContract:
    """The parsed, validated contract; ``raw`` keeps every key for ``pneumoscan info``.

    ``output`` is what the single-value output holds (``"logit"`` or ``"probability"``);
    ``outputs`` the tensors the metadata describes by name (``"logit"``, ``"heatmap"``), with
    :attr:`heatmap` the local logit map if the model has one. ``gate`` is the stored input-gate
    statistics section, checked by :func:`edge_app.gate.stored_gate` when the gate is used (a
    model without it still screens with ``--no-gate``). ``weights_sha256`` identifies the
    trained weights (``version`` ends in its first 12 hex digits).
    """

    labels: tuple[str, str]
    preprocess: PreprocessSpec
    channels: int
    input_dtype: str
    output: str
    threshold: float
    version: str
    uncertain_band: tuple[float, float] | None = None
    outputs: dict[str, OutputSpec] = field(default_factory=dict, compare=False)
    gate: dict | None = field(default=None, compare=False, repr=False)  # as stored; see gate.py
    weights_sha256: str | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def heatmap(self) -> OutputSpec | None:
        """The local logit map output ``[1, h, w, 1]``, or None for a model exported without it."""
        return self.outputs.get("heatmap")

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
        try:
            threshold = check_threshold(data["threshold"])
        except (TypeError, ValueError) as exc:
            raise ContractError(f"model metadata threshold: {exc}") from None
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
            outputs=_outputs(data.get("outputs")),
            gate=data.get("gate"),
            weights_sha256=data.get("weights_sha256"),
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


def _outputs(described) -> dict[str, OutputSpec]:
    """The ``outputs`` section as :class:`OutputSpec` by name; a heatmap must be ``[1, h, w, 1]``."""
    if not described:
        return {}
    if not isinstance(described, dict):
        raise ContractError("model metadata outputs must be an object")
    specs = {}
    for key, item in described.items():
        if not item:
            continue
        try:
            shape = tuple(int(x) for x in item.get("shape", ()))
            position = item.get("position")
            specs[key] = OutputSpec(str(item.get("name", key)), None if position is None else int(position), shape)
        except (AttributeError, TypeError, ValueError):
            raise ContractError(f"model metadata outputs.{key} is malformed") from None
    heatmap = specs.get("heatmap")
    if heatmap is not None and (len(heatmap.shape) != 4 or heatmap.shape[0] != 1 or heatmap.shape[3] != 1):
        raise ContractError(f"model metadata describes a heatmap output of shape {list(heatmap.shape)}, not [1, h, w, 1]")
    return specs


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
