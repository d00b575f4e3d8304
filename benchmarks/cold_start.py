"""Cold start of `pneumoscan predict one.jpeg`: wall time and peak memory, as a clinic sees them.

    python benchmarks/cold_start.py --model edge_app/models/pneumoscan-int8.tflite \
        [--keras RUN/model.keras] [--runs 5]

Each run is a fresh process (interpreter start, imports, model load, one synthetic 1400x1100 film
decoded, preprocessed and scored, result printed). With ``--keras`` the same prediction is timed
with TensorFlow and the Keras checkpoint, which is what the device would pay without the edge app.
Goal on the reference machine: <= 0.5 s and <= 80 MB for pneumoscan.

It also times, in this process, what checking the model file's integrity seal costs on every
load (:func:`edge_app.contract.read_model`: one read, the archive check and a SHA-256 over the
flatbuffer and the canonical contract) next to reading the contract without the check, and the
whole :class:`~edge_app.classifier.Classifier` load for scale.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_env, load_note, measure, pneumoscan_command  # noqa: E402

from edge_app.bench import write_synthetic_jpeg  # noqa: E402

KERAS_PREDICT = """
import sys
import keras
import numpy as np
from edge_app.preprocessing import PreprocessSpec, prepare_file
model = keras.models.load_model(sys.argv[1], compile=False)
size = int(model.input_shape[1])
image = prepare_file(sys.argv[2], PreprocessSpec(size)).pixels
print(float(np.ravel(model.predict(image[None, :, :, None], verbose=0))[0]))
"""


def report(name: str, runs: list[tuple[float, float, float]]) -> tuple[float, float]:
    walls = [w for w, _, _ in runs]
    peak = max(p for _, p, _ in runs)
    cpu = statistics.median(c for _, _, c in runs)
    print(
        f"{name:<30} wall median {statistics.median(walls):6.3f} s (min {min(walls):.3f}, max {max(walls):.3f})  "
        f"CPU {cpu:6.3f} s  peak RSS {peak:6.1f} MB"
    )
    return statistics.median(walls), peak


def integrity_cost(model: Path, repeats: int = 50) -> None:
    """Median time of the sealed load's check vs an unchecked read of the same bytes."""
    import hashlib
    import time
    import zipfile

    from edge_app.classifier import Classifier
    from edge_app.contract import read_model

    def median_ms(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    def unchecked():
        with zipfile.ZipFile(model) as archive:
            archive.read("metadata.json")

    size = model.stat().st_size
    checked_ms = median_ms(lambda: read_model(model))
    plain_ms = median_ms(unchecked)
    hash_ms = median_ms(lambda: hashlib.sha256(model.read_bytes()).digest())
    load_ms = median_ms(lambda: Classifier(model))
    print(
        f"integrity check ({size / 1e6:.2f} MB model, median of {repeats}): read_model {checked_ms:.2f} ms vs "
        f"unchecked metadata read {plain_ms:.2f} ms (+{checked_ms - plain_ms:.2f} ms; a bare SHA-256 of the file "
        f"{hash_ms:.2f} ms); whole Classifier load {load_ms:.1f} ms; budget 500 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="pneumoscan .tflite (default: the app's own choice)")
    parser.add_argument("--keras", type=Path, help="a Keras checkpoint to compare against")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", type=Path, help="image to predict (default: a synthetic film)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pneumoscan-cold-") as tmp:
        image = args.image or write_synthetic_jpeg(Path(tmp) / "one.jpeg")
        command = [*pneumoscan_command(), "predict", str(image)]
        if not args.image:
            command.append("--no-gate")  # the input gate rightly refuses a synthetic film
        if args.model:
            command += ["--model", str(args.model)]
        print(f"command: {' '.join(command)}")
        print(f"machine: {load_note()}")
        measure(command, clean_env())  # untimed: warms the page cache like a device that has run before
        edge = report("pneumoscan predict (TFLite)", [measure(command, clean_env()) for _ in range(args.runs)])
        goal = "meets" if edge[0] <= 0.5 and edge[1] <= 80 else "misses"
        print(f"{'':<30} median {goal} the goal of <= 0.5 s and <= 80 MB")
        from edge_app.model_file import resolve_model_path

        integrity_cost(resolve_model_path(args.model))
        if args.keras:
            keras_cmd = [sys.executable, "-c", KERAS_PREDICT, str(args.keras), str(image)]
            measure(keras_cmd, clean_env())
            tf = report("TensorFlow + Keras checkpoint", [measure(keras_cmd, clean_env()) for _ in range(args.runs)])
            print(f"{'':<30} pneumoscan is {tf[0] / edge[0]:.1f}x faster and uses {tf[1] / edge[1]:.1f}x less memory")


if __name__ == "__main__":
    main()
