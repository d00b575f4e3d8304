"""The contract a model file carries: what the device must know to use it correctly.

Export appends ``metadata.json`` to the ``.tflite`` file as a zip member. The TFLite interpreter
reads the flatbuffer at the start of the file and ignores the trailing archive, while
:mod:`zipfile` finds the archive from the end, so the file stays a single artefact that cannot
drift apart from its labels, input size, threshold or preprocessing.

Integrity: the contract carries ``integrity: {"sha256": ..., "method": ...}``, a SHA-256 over the
flatbuffer and the canonical JSON of the contract without that field (:func:`integrity_digest`),
written by :func:`write_metadata` (the one place a contract is appended, used by export) and
checked on every load (:func:`read_model`), before the contract is parsed or the flatbuffer
reaches an interpreter: a flipped bit anywhere in the weights, the graph or the contract is
refused instead of silently changing scores. A model without the field is refused too (the
device runs unattended; a file that cannot prove it is what was validated must not score
children): re-seal an older export with ``pneumoscan-export seal FILE``. The interpreter is
then built from the very bytes that were checked, so the file cannot change in between.
Not covered: zip bookkeeping that carries no meaning (member timestamps, version and attribute
fields); the archive's structure itself is checked (one member, right after the flatbuffer).

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

import hashlib
import io
import json
import math
import os
import re
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from edge_app.preprocessing import NORMALIZATIONS, PREPROCESSING_VERSION, PreprocessSpec

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

#: The two labels, in this order (index 1 is what the score is the probability of): the device's
#: words for a result ("signs of pneumonia likely") only make sense for exactly these.
EXPECTED_LABELS = ("NORMAL", "PNEUMONIA")

#: Input types a TFLite model here may take.
INPUT_DTYPES = ("uint8", "int8", "float32")

_HEX64 = re.compile(r"[0-9a-f]{64}")

#: The contract key holding the seal, and how it is computed (stored beside the digest).
INTEGRITY_KEY = "integrity"
INTEGRITY_METHOD = "sha256(u64be(len(flatbuffer)) + flatbuffer + canonical JSON of the contract without 'integrity')"

#: The metadata member's MS-DOS date (1980-01-01, the earliest zip allows) and time (00:00).
_DOS_DATE, _DOS_TIME = (0 << 9) | (1 << 5) | 1, 0

#: Model files larger than this are refused before they are read (the shipped one is ~0.4 MB).
MAX_MODEL_BYTES = 256 * 1024 * 1024


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
        """Validate ``data`` as a schema (types, ranges, consistency with itself and with this
        device's preprocessing) and parse it; any problem is one :class:`ContractError` line."""
        try:
            return cls._from_dict(data)
        except ContractError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # Whatever the schema checks below missed: still one line, never a traceback.
            raise ContractError(f"model metadata is malformed ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_dict(cls, data: dict) -> "ModelContract":
        if not isinstance(data, dict):
            raise ContractError(f"model metadata must be a JSON object, not {_kind(data)}")
        missing = [key for key in REQUIRED_KEYS if key not in data]
        if missing:
            raise ContractError(f"model metadata lacks {', '.join(missing)}")
        if data["format"] != FORMAT:
            raise ContractError(f"model metadata format {_show(data['format'])}, expected {FORMAT!r}")
        labels = data["labels"]
        if not isinstance(labels, list) or len(labels) != 2 or len(set(map(str, labels))) != 2:
            raise ContractError(f"model metadata labels must be two distinct names, got {_show(labels)}")
        if tuple(labels) != EXPECTED_LABELS:
            raise ContractError(
                f"model metadata labels {_show(labels)} are not {list(EXPECTED_LABELS)} in this order "
                "(the score is P(PNEUMONIA))"
            )
        if data["output"] not in OUTPUT_KINDS:
            raise ContractError(f"model metadata output {_show(data['output'])} not in {OUTPUT_KINDS}")
        try:
            threshold = check_threshold(_number(data["threshold"], "threshold"))
        except (TypeError, ValueError) as exc:
            raise ContractError(f"model metadata threshold: {exc}") from None
        image_size = _integer(data["image_size"], "image_size", 16, 1024)
        channels = _integer(data["channels"], "channels", 1, 1)  # preprocessing makes one gray channel
        if data["input_dtype"] not in INPUT_DTYPES:
            raise ContractError(f"model metadata input_dtype {_show(data['input_dtype'])} not in {INPUT_DTYPES}")
        version = data["version"]
        if not isinstance(version, str) or not version.strip() or len(version) > 100 or not version.isprintable():
            raise ContractError("model metadata version must be a short non-empty line of text")
        spec = _preprocessing(data["preprocessing"], data.get("preprocessing_id"))
        if spec.image_size != image_size:
            raise ContractError(
                f"model metadata image_size {image_size} disagrees with its "
                f"preprocessing ({spec.image_size})"
            )
        band = data.get("uncertain_band")
        if band is not None:
            if not isinstance(band, list) or len(band) != 2:
                raise ContractError(f"model metadata uncertain_band must be [low, high], got {_show(band)}")
            band = (_number(band[0], "uncertain_band"), _number(band[1], "uncertain_band"))
            if not 0.0 <= band[0] <= band[1] <= 1.0:
                raise ContractError(f"model metadata uncertain_band {list(band)} is not 0 <= low <= high <= 1")
            if not band[0] <= threshold <= band[1]:
                raise ContractError(f"uncertain_band {band} does not contain threshold {threshold}")
        weights = data.get("weights_sha256")
        if weights is not None and not (isinstance(weights, str) and _HEX64.fullmatch(weights)):
            raise ContractError("model metadata weights_sha256 is not a SHA-256 hex digest")
        gate = data.get("gate")
        if gate is not None:
            _check_gate(gate)
        outputs = _outputs(data.get("outputs"))
        return cls(
            labels=tuple(labels),  # type: ignore[arg-type]
            preprocess=spec,
            channels=channels,
            input_dtype=data["input_dtype"],
            output=data["output"],
            threshold=threshold,
            version=version,
            uncertain_band=band,
            outputs=outputs,
            gate=gate,
            weights_sha256=weights,
            pattern=parse_heads(data, tuple(labels), threshold, outputs),
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


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(type(value), type(value).__name__)


def _show(value) -> str:
    """A metadata value for an error message: short, one line (a model file is not trusted)."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value, name: str) -> float:
    """``value`` as a finite float; true/false, text and null are refused (``"abc"``, ``null``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"model metadata {name} must be a number, got {_show(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ContractError(f"model metadata {name} must be finite, got {value}")
    return value


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"model metadata {name} must be a whole number, got {_show(value)}")
    if not low <= value <= high:
        expected = f"{low}" if low == high else f"{low}..{high}"
        raise ContractError(f"model metadata {name} must be {expected}, got {value}")
    return value


def _preprocessing(section, top_level_id) -> PreprocessSpec:
    """The preprocessing section as a spec this device can reproduce exactly, or ContractError:
    a known version, a known normalization, and an ``id`` (and ``preprocessing_id``) that names
    the same steps, so that e.g. ``equalize`` under a ``percentile`` id is caught."""
    if not isinstance(section, dict):
        raise ContractError(f"model metadata preprocessing is invalid: must be an object, got {_show(section)}")
    if section.get("normalization") not in NORMALIZATIONS:
        raise ContractError(
            f"model metadata preprocessing is invalid: normalization {_show(section.get('normalization'))} "
            f"not in {NORMALIZATIONS}"
        )
    version = section.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != PREPROCESSING_VERSION:
        raise ContractError(
            f"model metadata preprocessing is invalid: version {_show(version)} is not this device's "
            f"preprocessing version {PREPROCESSING_VERSION} (update pneumoscan, or re-export the model)"
        )
    size = section.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
        raise ContractError(f"model metadata preprocessing is invalid: image_size {_show(size)} is not 16..1024")
    spec = PreprocessSpec(image_size=size, normalization=section["normalization"], version=version)
    for name, given in (("preprocessing.id", section.get("id")), ("preprocessing_id", top_level_id)):
        if given is not None and given != spec.id:
            raise ContractError(
                f"model metadata {name} {_show(given)} contradicts its preprocessing ({spec.id})"
            )
    return spec


#: The numbers every feature of the input-gate statistics carries (see ``edge_app.gate.fit_gate``).
_GATE_NUMBERS = ("low", "high", "q_low", "q_high", "median", "iqr")


def _check_gate(gate) -> None:
    """The input-gate section is well-formed: numbers where numbers belong, ordered ranges.

    Which features it must have is :func:`edge_app.gate.stored_gate`'s check (it knows them);
    here a malformed section is refused on load, not found out image by image.
    """
    where = "model metadata gate"
    if not isinstance(gate, dict):
        raise ContractError(f"{where} must be an object")
    version = gate.get("features_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ContractError(f"{where}.features_version must be a whole number, got {_show(version)}")
    most = gate.get("max_unusual")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 0):
        raise ContractError(f"{where}.max_unusual must be a whole number >= 0, got {_show(most)}")
    features = gate.get("features")
    if not isinstance(features, dict) or not features:
        raise ContractError(f"{where}.features must be a non-empty object")
    for name, limits in features.items():
        if not isinstance(limits, dict):
            raise ContractError(f"{where}.features.{_show(name)} must be an object")
        missing = [key for key in _GATE_NUMBERS if key not in limits]
        if missing:
            raise ContractError(f"{where}.features.{name} lacks {', '.join(missing)}")
        values = {key: _number(limits[key], f"gate.features.{name}.{key}") for key in _GATE_NUMBERS}
        if not values["low"] <= values["q_low"] <= values["q_high"] <= values["high"] or values["iqr"] < 0:
            raise ContractError(f"{where}.features.{name} is not ordered low <= q_low <= q_high <= high")


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


def metadata_archive(text: bytes, offset: int) -> bytes:
    """The zip archive appended at ``offset`` (the flatbuffer's length) holding ``text`` as
    ``metadata.json``: one member, stored (not deflated), fixed timestamp and attributes, no
    comment. Written here byte by byte (PKWARE APPNOTE 4.3) rather than by :mod:`zipfile` so that
    it is a pure function of the contract, the same on any machine and Python: the loader then
    requires the file's archive to be exactly these bytes, so no bit of the file, bookkeeping
    included, can change unnoticed. Any zip reader (:mod:`zipfile`, ``unzip``) reads it.
    """
    crc, size, name = zlib.crc32(text), len(text), METADATA_MEMBER.encode("ascii")
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, zipfile.ZIP_STORED, _DOS_TIME, _DOS_DATE, crc, size, size, len(name), 0
    ) + name
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", (3 << 8) | 20, 20, 0, zipfile.ZIP_STORED, _DOS_TIME, _DOS_DATE,
        crc, size, size, len(name), 0, 0, 0, 0, 0o100644 << 16, offset,
    ) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), offset + len(local) + size, 0)
    return local + text + central + end


def canonical_json(metadata: dict) -> bytes:
    """The contract without its ``integrity`` field as canonical JSON (sorted keys, no spaces,
    ASCII): the same bytes for the same contract whoever wrote or pretty-printed it."""
    body = {key: value for key, value in metadata.items() if key != INTEGRITY_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def integrity_digest(flatbuffer: bytes, metadata: dict) -> str:
    """The seal of a model file: see :data:`INTEGRITY_METHOD` (the length prefix keeps the two
    parts from trading bytes)."""
    digest = hashlib.sha256(struct.pack(">Q", len(flatbuffer)))
    digest.update(flatbuffer)
    digest.update(canonical_json(metadata))
    return digest.hexdigest()


def sealed(flatbuffer: bytes, metadata: dict) -> dict:
    """``metadata`` with a fresh ``integrity`` field for ``flatbuffer``."""
    body = {key: value for key, value in metadata.items() if key != INTEGRITY_KEY}
    return {**body, INTEGRITY_KEY: {"sha256": integrity_digest(flatbuffer, body), "method": INTEGRITY_METHOD}}


@dataclass(frozen=True)
class ModelFile:
    """A model file read once and checked: the flatbuffer bytes (what the interpreter gets) and
    the stored metadata (not yet parsed; :meth:`ModelContract.from_dict` does that)."""

    flatbuffer: bytes
    metadata: dict


def split_model(data: bytes, name: str = "model", *, exact: bool = True) -> tuple[bytes, bytes]:
    """``(flatbuffer, metadata JSON bytes)`` of a model file's bytes, or :class:`ContractError`.

    The archive must be exactly what :func:`write_metadata` appends: one ``metadata.json``
    member starting right after the flatbuffer, no archive comment. ``exact=False`` also takes an
    archive that :mod:`zipfile` wrote (files exported before sealing existed), for
    :func:`seal_model` only: the device always loads with ``exact=True``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ContractError(f"{name} carries no pneumoscan metadata (export it with pneumoscan-export)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged directory can raise almost anything
        raise ContractError(f"{name} has a damaged metadata archive ({type(exc).__name__})") from None
    try:
        with archive:
            members = archive.infolist()
            if [m.filename for m in members] != [METADATA_MEMBER] or archive.comment:
                raise ContractError(f"{name}: its metadata archive holds something other than {METADATA_MEMBER}")
            start = members[0].header_offset
            if not 0 < start < len(data) or data[start : start + 4] != b"PK\x03\x04":
                raise ContractError(f"{name}: its metadata archive is damaged")
            text = archive.read(METADATA_MEMBER)
        if exact and data[start:] != metadata_archive(text, start):
            raise ContractError(f"{name}: its metadata archive is damaged (not as pneumoscan-export writes it)")
    except ContractError:
        raise
    except Exception as exc:  # noqa: BLE001
        # a bad CRC, a damaged deflate stream, an "encrypted" flag: a damaged file
        raise ContractError(f"{name} has a damaged metadata archive ({type(exc).__name__})") from None
    return data[:start], text


def parse_metadata_json(text: bytes, name: str = "model") -> dict:
    try:
        return json.loads(text.decode("utf-8"), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ContractError(f"{name} has unreadable metadata: {str(exc).splitlines()[0][:100]}") from None


def verify_integrity(flatbuffer: bytes, metadata, name: str = "model") -> None:
    """Refuse a model whose seal is missing or does not match its bytes (one line)."""
    if not isinstance(metadata, dict):
        return  # the schema check says what is wrong with it
    seal = metadata.get(INTEGRITY_KEY)
    if seal is None:
        raise ContractError(
            f"{name} carries no integrity seal, so it cannot be checked for damage: "
            "seal it with `pneumoscan-export seal FILE` (or re-export it)"
        )
    if not isinstance(seal, dict) or seal.get("method") != INTEGRITY_METHOD or not (
        isinstance(seal.get("sha256"), str) and _HEX64.fullmatch(seal["sha256"])
    ):
        raise ContractError(f"{name}: its integrity seal is malformed or of an unknown kind")
    try:
        expected = integrity_digest(flatbuffer, metadata)
    except (TypeError, ValueError):  # not JSON-serialisable back: it was not written by us
        expected = None
    if expected != seal["sha256"]:
        raise ContractError(
            f"{name} is damaged or was modified: its content does not match its integrity seal "
            "(copy the model file again from a good source)"
        )


def read_model(model_path: str | Path) -> ModelFile:
    """Read ``model_path`` once, check its structure and integrity seal, and return the checked
    flatbuffer and metadata; every problem is one :class:`ContractError` line."""
    name = str(model_path)
    try:
        size = os.stat(model_path).st_size
        if size > MAX_MODEL_BYTES:
            raise ContractError(f"{name} is {size} bytes, too large for a pneumoscan model")
        data = Path(model_path).read_bytes()
    except FileNotFoundError:
        raise ContractError(f"model file not found: {model_path}") from None
    except IsADirectoryError:
        raise ContractError(f"{name} is a folder, not a model file") from None
    except OSError as exc:
        raise ContractError(f"cannot read model file {name}: {exc.strerror or exc}") from None
    flatbuffer, text = split_model(data, name)
    metadata = parse_metadata_json(text, name)
    verify_integrity(flatbuffer, metadata, name)
    return ModelFile(flatbuffer, metadata)


def read_metadata(model_path: str | Path) -> dict:
    """Return the raw metadata dict stored in ``model_path`` (integrity checked), or raise
    :class:`ContractError`."""
    return read_model(model_path).metadata


def read_contract(model_path: str | Path) -> ModelContract:
    """Read, check and validate the contract stored in ``model_path``."""
    return ModelContract.from_dict(read_metadata(model_path))


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def write_metadata(model_path: str | Path, metadata: dict) -> dict:
    """Append ``metadata``, sealed (:func:`sealed`), to ``model_path`` as a zip member and write
    ``<model>.json`` beside it; returns the sealed metadata as stored. The one place a contract is
    written into a model file.

    Appending to a file that is not yet a zip leaves its leading bytes (the flatbuffer) intact.
    """
    ModelContract.from_dict(metadata)  # never write a contract the device would refuse
    flatbuffer = Path(model_path).read_bytes()
    try:
        zipfile.ZipFile(io.BytesIO(flatbuffer)).close()
    except zipfile.BadZipFile:
        pass
    else:
        raise ContractError(f"{model_path} already carries metadata")
    metadata = sealed(flatbuffer, metadata)
    text = json.dumps(metadata, indent=2, sort_keys=True)
    with open(model_path, "ab") as handle:
        handle.write(metadata_archive(text.encode("utf-8"), len(flatbuffer)))
    Path(f"{model_path}.json").write_text(text + "\n", encoding="utf-8")
    return metadata


def seal_model(model_path: str | Path) -> str:
    """Re-seal an existing model file in place (its flatbuffer and contract unchanged, a fresh
    ``integrity`` field): for files exported before sealing existed, or after a deliberate edit
    of the contract. Written to a temporary file in the same folder, then renamed, so a crash
    leaves the old file. Returns the new digest.

    Only the contract's own validity is checked here; the seal says "this is the file I
    vouch for", so run it only on a file you trust.
    """
    path = Path(model_path)
    data = path.read_bytes()
    flatbuffer, text = split_model(data, str(path), exact=False)
    metadata = parse_metadata_json(text, str(path))
    ModelContract.from_dict({k: v for k, v in metadata.items() if k != INTEGRITY_KEY})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(flatbuffer)
        write_metadata(tmp, {k: v for k, v in metadata.items() if k != INTEGRITY_KEY})
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
        os.replace(f"{tmp}.json", f"{path}.json")
    except BaseException:
        for leftover in (tmp, f"{tmp}.json"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise
    return read_metadata(path)[INTEGRITY_KEY]["sha256"]
