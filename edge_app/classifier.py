"""Run a pneumoscan ``.tflite`` model on preprocessed images.

The classifier trusts nothing it can read instead: labels, input size, preprocessing and
threshold come from the model's contract, quantisation parameters from the interpreter, and the
two are checked against each other before the first image is scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_app.contract import ContractError, ModelContract, read_contract
from edge_app.preprocessing import PreprocessSpec, preprocess_file
from edge_app.runtime import find_interpreter


def sigmoid(logit: np.ndarray | float) -> np.ndarray:
    """Probability from a logit, computed stably in float64."""
    x = np.asarray(logit, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


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
        self.contract: ModelContract = read_contract(self.model_path)
        self.runtime, interpreter_class = find_interpreter(runtime)
        try:
            self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ContractError(f"{self.model_path} is not a loadable TFLite model: {exc}") from None
        self._input = self._interpreter.get_input_details()[0]
        outputs = self._interpreter.get_output_details()
        self._output = next((o for o in outputs if int(np.prod(o["shape"])) == 1), None)
        if self._output is None:
            raise ContractError(f"{self.model_path} has no single-value output")
        self.contract.check_input_details(tuple(self._input["shape"]), np.dtype(self._input["dtype"]).name)

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

    def _dequantize_output(self, value: np.ndarray) -> float:
        scale, zero_point = self._output["quantization"]
        value = value.astype(np.float64).reshape(-1)[0]
        if np.issubdtype(np.dtype(self._output["dtype"]), np.integer) and scale:
            value = (value - zero_point) * scale
        return float(value)

    def raw_output(self, image: np.ndarray) -> float:
        """The model's output for one ``(s, s)`` uint8 image, dequantised (a logit or a probability)."""
        self._interpreter.set_tensor(self._input["index"], self._quantize_input(image))
        self._interpreter.invoke()
        return self._dequantize_output(self._interpreter.get_tensor(self._output["index"]))

    def classify(self, image: np.ndarray) -> float:
        """P(pneumonia) for one preprocessed ``(s, s)`` uint8 image."""
        value = self.raw_output(image)
        return float(sigmoid(value)) if self.contract.output == "logit" else value

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        """P(pneumonia) for a stack of preprocessed images ``(n, s, s)``."""
        return np.array([self.classify(img) for img in images], dtype=np.float64)

    def classify_file(self, path: str | Path) -> float:
        """P(pneumonia) for an image file (raises ``ImageError`` with the reason if unusable)."""
        return self.classify(preprocess_file(path, self.preprocess))
