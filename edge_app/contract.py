"""The contract a model file carries: what the device must know to use it correctly.

Export appends ``metadata.json`` to the ``.tflite`` file as a zip member. The TFLite interpreter
reads the flatbuffer at the start of the file and ignores the trailing archive, while
:mod:`zipfile` finds the archive from the end, so the file stays a single artefact that cannot
drift apart from its labels, input size, threshold or preprocessing.

The stored JSON is parsed once, by :meth:`ModelContract.from_dict`, into the typed fields every
consumer reads: the classifier (input, outputs, heatmap output), the screener and results
(labels, threshold, uncertain band, version), the input gate (``gate``), ``pneumoscan info``
(``raw``). Nothing else opens the metadata.

**Heads** (optional ``heads`` section, parsed by :func:`parse_heads`; a file without it is a
two-class model and reads exactly as before). It says what each output means and which one
decides::

    "heads": {
      "screening": {"output": "logit", "tensor": "logit", "labels": ["NORMAL", "PNEUMONIA"],
                    "threshold": 0.43, "decision": true},
      "pattern":   {"output": "logit", "tensor": "pattern", "labels": ["bacterial", "viral"],
                    "display": {"bacterial": "bacterial pneumonia", "viral": "viral pneumonia"},
                    "applies_when": "screening positive", "validation": {...}}
    }

- ``screening`` is the screening decision, and the only output that is one: its ``labels``,
  ``output`` and ``threshold`` must equal the top-level ones (which old readers use), so the two
  can never disagree; the heatmap and the uncertain band belong to it.
- ``pattern`` says which kind of finding a film looks like. ``tensor`` names the ``outputs``
  entry holding it (found in the interpreter by that entry's tensor ``name``, since the pattern
  logit has the same one-value shape as the screening logit). ``output`` is ``"logit"`` for two
  labels (P(second label) = sigmoid) or ``"logits"`` for three or more (softmax over
  ``labels``). ``applies_when`` is ``"screening positive"``: the pattern is read, and shown,
  only for a film at or over the screening threshold; it never changes the screening call.
  ``display`` (optional) gives the words shown for each label. ``validation`` is for people.
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
    #: The pattern head (``heads.pattern``), or None for a two-class model.
    pattern: "PatternHead | None" = None
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
        outputs = _outputs(data.get("outputs"))
        return cls(
            labels=labels,  # type: ignore[arg-type]
            preprocess=spec,
            channels=int(data["channels"]),
            input_dtype=str(data["input_dtype"]),
            output=str(data["output"]),
            threshold=threshold,
            version=str(data["version"]),
            uncertain_band=band,
            outputs=outputs,
            gate=data.get("gate"),
            weights_sha256=data.get("weights_sha256"),
            pattern=parse_heads(data, labels, threshold, outputs),
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


PATTERN_OUTPUTS = ("logit", "logits")
#: The only rule for when a pattern is read: the screening head called the film positive.
APPLIES_WHEN = "screening positive"


@dataclass(frozen=True)
class PatternHead:
    """The parsed ``heads.pattern`` section: which pattern a positive film looks like."""

    labels: tuple[str, ...]
    output: str  #: "logit" (two labels, sigmoid) or "logits" (softmax)
    tensor: OutputSpec  #: where the interpreter holds it
    display: dict[str, str] = field(default_factory=dict)

    def words(self, label: str) -> str:
        """What a nurse reads for ``label`` (``display``, else the label itself)."""
        return self.display.get(label, label)


def parse_heads(data: dict, labels: tuple[str, ...], threshold: float, outputs: dict[str, OutputSpec]) -> PatternHead | None:
    """The ``heads`` section (see the module docstring) checked against the rest of the contract;
    None when the file has no pattern head (every two-class model)."""
    heads = data.get("heads")
    if heads is None:
        return None
    if not isinstance(heads, dict):
        raise ContractError("model metadata heads must be an object")
    screening = heads.get("screening")
    if screening is not None:
        if not isinstance(screening, dict):
            raise ContractError("model metadata heads.screening must be an object")
        if tuple(screening.get("labels", labels)) != tuple(labels):
            raise ContractError(f"heads.screening labels {screening.get('labels')} disagree with labels {list(labels)}")
        if screening.get("output", data["output"]) != data["output"]:
            raise ContractError(f"heads.screening output {screening.get('output')!r} disagrees with output {data['output']!r}")
        if "threshold" in screening and abs(float(screening["threshold"]) - threshold) > 1e-12:
            raise ContractError(f"heads.screening threshold {screening['threshold']} disagrees with threshold {threshold}")
    pattern = heads.get("pattern")
    if pattern is None:
        return None
    if not isinstance(pattern, dict):
        raise ContractError("model metadata heads.pattern must be an object")
    names = tuple(str(x) for x in pattern.get("labels") or ())
    if len(names) < 2 or len(set(names)) != len(names):
        raise ContractError(f"heads.pattern labels must be two or more distinct names, got {list(names)}")
    output = pattern.get("output")
    if output not in PATTERN_OUTPUTS:
        raise ContractError(f"heads.pattern output {output!r} not in {PATTERN_OUTPUTS}")
    if (output == "logit") != (len(names) == 2):
        raise ContractError(f"heads.pattern output {output!r} does not fit {len(names)} labels (logit: two, logits: three or more)")
    if pattern.get("applies_when") != APPLIES_WHEN:
        raise ContractError(f"heads.pattern applies_when must be {APPLIES_WHEN!r}, got {pattern.get('applies_when')!r}")
    key = pattern.get("tensor", "pattern")
    tensor = outputs.get(key)
    if tensor is None:
        raise ContractError(f"heads.pattern names output {key!r}, which the outputs section does not describe")
    expected = (1, 1) if output == "logit" else (1, len(names))
    if tensor.shape != expected:
        raise ContractError(f"heads.pattern output {key!r} has shape {list(tensor.shape)}, expected {list(expected)}")
    if "logit" not in outputs:
        raise ContractError("a model with a pattern head must describe its screening 'logit' output by name")
    display = pattern.get("display") or {}
    if not isinstance(display, dict):
        raise ContractError("heads.pattern display must be an object")
    return PatternHead(names, output, tensor, {str(k): str(v) for k, v in display.items()})


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
