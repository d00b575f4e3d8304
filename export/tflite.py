"""Keras export graph -> TFLite flatbuffer, in one of four numeric formats.

- ``int8`` (default, what the device runs): full-integer post-training quantisation. Only
  ``TFLITE_BUILTINS_INT8`` kernels are allowed, so an op without an int8 kernel makes conversion
  fail instead of silently leaving a float island; the result is checked again afterwards. Input
  is uint8 (the raw preprocessed pixels; rescaling is the model's first layer), outputs are
  float32 (the logit is dequantised in the graph, so the device reads it without guessing).
- ``float16``: float16 weights, float32 maths and input; half the size of ``none``.
- ``dynamic``: int8 weights, float32 input, activations quantised on the fly.
- ``none``: plain float32; the reference the others are compared with.

The input shape is static ``[1, N, N, 1]``: the device scores one film at a time, and a fixed
shape lets the runtime plan its memory once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from export.errors import ExportError

#: Quantisation mode -> file-name suffix.
QUANTIZATIONS = {"int8": "int8", "float16": "fp16", "dynamic": "dynamic", "none": "fp32"}

#: What each mode means, stored in the metadata for people reading it.
DESCRIPTIONS = {
    "int8": "full-integer post-training quantisation (int8 weights and activations, uint8 input, float32 outputs)",
    "float16": "float16 weights, float32 computation, float32 input",
    "dynamic": "int8 weights with dynamic-range activation quantisation, float32 input",
    "none": "float32 weights and computation, float32 input",
}


def default_output(run_folder: Path, quantize: str) -> Path:
    """``<run>/model-int8.tflite`` (``-fp16``, ``-dynamic``, ``-fp32`` for the other modes)."""
    return Path(run_folder) / f"model-{QUANTIZATIONS[quantize]}.tflite"


def _saved_model(graph, image_size: int, folder: Path) -> None:
    """Write ``graph`` as a SavedModel with one static-shape signature.

    Keras 3's ``ExportArchive`` tracks every variable the graph reads; converting a bare
    ``tf.function`` leaves some unfrozen (``READ_VARIABLE`` failures during calibration).
    """
    import keras
    import tensorflow as tf

    from export.graph import INPUT_NAME, LOGIT_OUTPUT, MAP_OUTPUT, PATTERN_OUTPUT

    def serve(image):
        outputs = graph(image, training=False)
        named = {LOGIT_OUTPUT: outputs[0], MAP_OUTPUT: outputs[1]}
        if len(outputs) > 2:
            named[PATTERN_OUTPUT] = outputs[2]
        return named

    archive = keras.export.ExportArchive()
    archive.track(graph)
    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec([1, image_size, image_size, 1], tf.float32, name=INPUT_NAME)]
    )
    archive.write_out(str(folder), verbose=False)


def convert(
    graph,
    quantize: str,
    image_size: int,
    representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
) -> bytes:
    """The flatbuffer for ``graph`` in mode ``quantize``; int8 needs ``representative``."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantisation {quantize!r}; one of {', '.join(QUANTIZATIONS)}")
    if quantize == "int8" and representative is None:
        raise ExportError("int8 quantisation needs representative images")
    with tempfile.TemporaryDirectory(prefix="pneumoscan-export-") as tmp:
        _saved_model(graph, image_size, Path(tmp))
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.float32
        elif quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            model = converter.convert()
        except Exception as exc:  # the converter raises many types; all mean "no file"
            lines = [line for line in str(exc).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(exc).__name__
            raise ExportError(f"{quantize} conversion failed: {reason}") from None
    if quantize == "int8":
        check_integer_only(model)
    return model


def check_integer_only(model: bytes) -> None:
    """Refuse an "int8" flatbuffer with float tensors other than its dequantised outputs."""
    from edge_app.runtime import find_interpreter

    _, interpreter_class = find_interpreter()
    interpreter = interpreter_class(model_content=model)
    outputs = {o["index"] for o in interpreter.get_output_details()}
    inputs = interpreter.get_input_details()
    if any(np.dtype(i["dtype"]) != np.uint8 for i in inputs):
        raise ExportError("int8 conversion produced a non-uint8 input")
    floats = [
        t["name"]
        for t in interpreter.get_tensor_details()
        if np.dtype(t["dtype"]).kind == "f" and t["index"] not in outputs
    ]
    if floats:
        raise ExportError(f"int8 conversion left {len(floats)} float tensor(s), e.g. {floats[0]}")
