"""1-thread inference of pneumoscan int8 files side by side with MobileNetV2-1.0-224 int8.

    python benchmarks/vs_mobilenet.py MODEL.tflite [MODEL.tflite ...] [--runs 300]

The issue's speed bar is relative: a model must run at least 2x faster than MobileNetV2-1.0-224
int8 on the same machine in the same run. MobileNetV2 is built here with random weights (speed
does not depend on the weights), one 224x224 input channel replicated to three, converted to full
int8 with random calibration, and timed through the same interpreter with the same thread count,
interleaved with the pneumoscan models so machine noise hits both. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def mobilenet_int8(path: Path) -> None:
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNetV2(alpha=1.0, input_shape=(224, 224, 3), weights=None, classes=1)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(20):
            yield [rng.uniform(0, 1, (1, 224, 224, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    path.write_bytes(converter.convert())


def interpreter(path: Path):
    from edge_app.runtime import find_interpreter

    _, cls = find_interpreter()
    it = cls(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    x = np.random.default_rng(1).integers(0, 256, detail["shape"]).astype(detail["dtype"])
    return it, detail["index"], x


def time_once(it, index, x) -> float:
    it.set_tensor(index, x)
    start = time.perf_counter()
    it.invoke()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "mobilenet_v2_1.0_224_int8.tflite"
        mobilenet_int8(reference)
        subjects = {"MobileNetV2-1.0-224 int8": interpreter(reference)}
        subjects.update({str(m): interpreter(m) for m in args.models})
        times = {name: [] for name in subjects}
        for name, s in subjects.items():
            for _ in range(10):
                time_once(*s)  # warm-up
        for _ in range(args.runs):
            for name, s in subjects.items():
                times[name].append(time_once(*s))
    base = statistics.median(times["MobileNetV2-1.0-224 int8"])
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name}: median {median:.3f} ms at 1 thread ({base / median:.1f}x faster than MobileNetV2)")


if __name__ == "__main__":
    main()
