"""Run a pneumoscan ``.tflite`` model on preprocessed images.

The classifier trusts nothing it can read instead: labels, input size, preprocessing and
threshold come from the model's contract, quantisation parameters from the interpreter, and the
two are checked against each other before the first image is scored.

A model exported with a heatmap has a second output, a local logit map ``[1, h, w, 1]`` (see
``export/graph.py``). The classifier finds it by the shape the contract records
(:attr:`~edge_app.contract.ModelContract.heatmap`), never by output order, and
:meth:`Classifier.classify_with_map` returns it from the same single invocation.

A model with a pattern head (:attr:`~edge_app.contract.ModelContract.pattern`) has one more
output; then both one-value outputs are found by the tensor names the contract records.
:meth:`Classifier.read` returns everything one invocation gives (:class:`Reading`): the
screening probability, the pattern probabilities (read only for a film at or over the
threshold: the contract's ``applies_when``) and the local map.

Inference only: decoding a file is :mod:`edge_app.decoding`, screening one (decode, gate, score,
heatmap) is :class:`edge_app.screening.Screener`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_app.contract import ContractError, ModelContract, read_model
from edge_app.preprocessing import PreprocessSpec
from edge_app.runtime import find_interpreter


def sigmoid(logit: np.ndarray | float) -> np.ndarray:
    """Probability from a logit, computed stably in float64."""
    x = np.asarray(logit, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, computed stably in float64."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


@dataclass(frozen=True)
class Reading:
    """What one invocation says about a film.

    ``probability``: P(screening positive). ``pattern``: P(each pattern label), in the contract's
    label order, or None (a two-class model, or a film under the threshold). ``local_map``: the
    screening head's local logit map ``(h, w)``, when asked for.
    """

    probability: float
    pattern: tuple[float, ...] | None = None
    local_map: np.ndarray | None = None


def _describe(details: dict) -> dict:
    scale, zero_point = details["quantization"]
    return {
        "shape": [int(x) for x in details["shape"]],
        "dtype": np.dtype(details["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
    }


class Classifier:
    """One loaded model. ``classify()`` takes a model-input image and returns P(pneumonia)."""

    def __init__(self, model_path: str | Path, threads: int = 1, runtime: str | None = None):
        self.model_path = Path(model_path)
        self.threads = int(threads)
        if not self.model_path.is_file():
            raise ContractError(f"model file not found: {self.model_path}")
        checked = read_model(self.model_path)  # integrity verified: see edge_app.contract
        self.contract: ModelContract = ModelContract.from_dict(checked.metadata)
        self.runtime, interpreter_class = find_interpreter(runtime)
        # The interpreter gets the very bytes whose seal was checked (kept alive: it may not copy).
        self._flatbuffer = checked.flatbuffer
        try:
            self._interpreter = interpreter_class(model_content=self._flatbuffer, num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ContractError(f"{self.model_path} is not a loadable TFLite model: {exc}") from None
        self._input = self._interpreter.get_input_details()[0]
        outputs = self._interpreter.get_output_details()
        self._pattern = None
        if self.contract.pattern is not None:
            self._output = self._named_output(outputs, self.contract.outputs["logit"])
            self._pattern = self._named_output(outputs, self.contract.pattern.tensor)
        else:
            self._output = next((o for o in outputs if int(np.prod(o["shape"])) == 1), None)
        if self._output is None:
            raise ContractError(f"{self.model_path} has no single-value output")
        self._map = self._find_map_output(outputs)
        self.contract.check_input_details(tuple(self._input["shape"]), np.dtype(self._input["dtype"]).name)
        self._check_output_kind()

    def _output_producer(self) -> str | None:
        """The name of the graph operation that computes the score (looking through the
        (de)quantisation steps int8 conversion adds), or None if the runtime cannot tell."""
        try:
            ops = self._interpreter._get_ops_details()
        except Exception:  # noqa: BLE001 - a private API: older runtimes lack it
            return None
        made_by = {}
        for op in ops:
            if op.get("op_name") == "DELEGATE":
                continue  # the delegate's node stands for the ops it replaced, listed too
            for tensor in op.get("outputs", ()):
                made_by[int(tensor)] = op
        tensor, seen = int(self._output["index"]), 0
        while tensor in made_by and seen < 8:
            op = made_by[tensor]
            if op["op_name"] not in ("DEQUANTIZE", "QUANTIZE", "RESHAPE", "SQUEEZE"):
                return str(op["op_name"])
            tensor, seen = int(op["inputs"][0]), seen + 1
        return None

    def _check_output_kind(self) -> None:
        """Refuse a contract whose ``output`` (logit or probability) contradicts the graph: a
        probability is made by a sigmoid (``LOGISTIC``), a logit by anything else. Read as the
        wrong kind, a score of 4 would be called PNEUMONIA, or a logit squashed twice."""
        producer = self._output_producer()
        if producer is None:
            return
        sigmoid_made = producer == "LOGISTIC"
        declared = self.contract.output
        if sigmoid_made and declared != "probability":
            raise ContractError(
                f"{self.model_path}: metadata says the output is a {declared}, but the model ends in a sigmoid (a probability)"
            )
        if not sigmoid_made and declared == "probability":
            raise ContractError(
                f"{self.model_path}: metadata says the output is a probability, but the model does not end in a "
                f"sigmoid ({producer}): it is a logit"
            )

    def _find_map_output(self, outputs: list[dict]) -> dict | None:
        """The interpreter output the contract's heatmap describes, or None if it describes none."""
        described = self.contract.heatmap
        if described is None:
            return None
        matches = [o for o in outputs if tuple(int(x) for x in o["shape"]) == described.shape]
        if len(matches) != 1:
            raise ContractError(
                f"{self.model_path}: metadata describes a heatmap output of shape "
                f"{list(described.shape)}, the model has no such single output"
            )
        return matches[0]

    def _named_output(self, outputs: list[dict], described) -> dict:
        """The interpreter output the contract names, with the shape it records."""
        matches = [o for o in outputs if o["name"] == described.name]
        if len(matches) != 1 or (described.shape and tuple(int(x) for x in matches[0]["shape"]) != described.shape):
            raise ContractError(
                f"{self.model_path}: metadata describes output {described.name!r} of shape "
                f"{list(described.shape)}, the model has no such single output"
            )
        return matches[0]

    def require_heatmap(self) -> None:
        """Raise :class:`ContractError` if the model was exported without the heatmap output."""
        if self._map is None:
            raise ContractError(
                f"{self.model_path} has no heatmap output: re-export it with pneumoscan-export"
            )

    @property
    def preprocess(self) -> PreprocessSpec:
        return self.contract.preprocess

    @property
    def input_details(self) -> dict:
        """The interpreter's input: shape, dtype name and (scale, zero point), for ``info``."""
        return _describe(self._input)

    @property
    def output_details(self) -> dict:
        return _describe(self._output)

    def _quantize_input(self, image: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._input["dtype"])
        x = image.reshape(self._input["shape"]).astype(np.float32)
        scale, zero_point = self._input["quantization"]
        if np.issubdtype(dtype, np.integer):
            if scale:
                x = np.round(x / scale + zero_point)
            info = np.iinfo(dtype)
            x = np.clip(x, info.min, info.max)
        return x.astype(dtype)

    @staticmethod
    def _dequantize(details: dict, value: np.ndarray) -> np.ndarray:
        scale, zero_point = details["quantization"]
        value = value.astype(np.float64)
        if np.issubdtype(np.dtype(details["dtype"]), np.integer) and scale:
            value = (value - zero_point) * scale
        return value

    def _dequantize_output(self, value: np.ndarray) -> float:
        return float(self._dequantize(self._output, value).reshape(-1)[0])

    def raw_output(self, image: np.ndarray) -> float:
        """The model's output for one ``(s, s)`` uint8 image, dequantised (a logit or a probability)."""
        self._interpreter.set_tensor(self._input["index"], self._quantize_input(image))
        self._interpreter.invoke()
        return self._dequantize_output(self._interpreter.get_tensor(self._output["index"]))

    def _probability(self, value: float) -> float:
        return float(sigmoid(value)) if self.contract.output == "logit" else value

    def classify(self, image: np.ndarray) -> float:
        """P(pneumonia) for one preprocessed ``(s, s)`` uint8 image."""
        return self._probability(self.raw_output(image))

    def classify_with_map(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """P(pneumonia) and the local logit map ``(h, w)`` float64 from one invocation.

        Raises :class:`ContractError` for a model exported without the heatmap output.
        """
        reading = self.read(image, with_map=True, threshold=math.inf)  # no pattern wanted here
        return reading.probability, reading.local_map

    def read(self, image: np.ndarray, *, with_map: bool = False, threshold: float | None = None) -> Reading:
        """Everything one invocation says about one image (see :class:`Reading`). The pattern is
        read when the probability is at or over ``threshold`` (default: the contract's);
        ``with_map`` needs the heatmap output (:class:`ContractError` otherwise)."""
        if with_map:
            self.require_heatmap()
        probability = self._probability(self.raw_output(image))
        local = None
        if with_map:
            local = self._dequantize(self._map, self._interpreter.get_tensor(self._map["index"]))[0, :, :, 0]
        threshold = self.contract.threshold if threshold is None else threshold
        pattern = None
        if self._pattern is not None and probability >= threshold:
            pattern = self.pattern_probabilities()
        return Reading(probability, pattern, local)

    def pattern_probabilities(self) -> tuple[float, ...]:
        """P(each pattern label) from the last invocation (a model with a pattern head)."""
        if self._pattern is None:
            raise ContractError(f"{self.model_path} has no pattern head")
        values = self._dequantize(self._pattern, self._interpreter.get_tensor(self._pattern["index"])).reshape(-1)
        if self.contract.pattern.output == "logit":
            p = float(sigmoid(values[0]))
            return (1.0 - p, p)
        return tuple(float(x) for x in softmax(values))

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """P(pneumonia) for a stack of preprocessed images ``(n, s, s)``."""
        return np.array([self.classify(img) for img in images], dtype=np.float64)
