"""Cold start of `pneumoscan predict one.jpeg`: wall time and peak memory, as a clinic sees them.

    python benchmarks/cold_start.py [--model FILE] [--keras RUN/model.keras] [--runs 5]
        [--image FILM] [--compare-venv OTHER_VENV]

Each run is a fresh process (interpreter start, imports, model load, one film decoded, checked by
the input gate, preprocessed and scored, result printed). Two films are timed, one run of each in
turn: a sample film installed with the package, with the input gate on (what a nurse's first
`pneumoscan predict` does; or ``--image``), and a synthetic 1400x1100 film with ``--no-gate`` (the
gate rightly refuses it), whose decode and resize are those of a film at a clinic's own size.
Goal on the reference machine: <= 0.5 s and <= 80 MB for pneumoscan.

``--compare-venv`` runs the same commands with another environment's `pneumoscan` in the same
loop, one run of each in turn, and prints the ratio: e.g. a venv with a newer dependency, to see
what it costs the cold start on this noisy machine. With ``--keras`` the same prediction is timed
with TensorFlow and the Keras checkpoint, which is what the device would pay without the edge app.

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
        f"{name:<44} wall median {statistics.median(walls):6.3f} s (min {min(walls):.3f}, max {max(walls):.3f})  "
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


def venv_command(venv: Path) -> list[str]:
    """Another environment's `pneumoscan` console script (a venv directory or its bin/)."""
    for script in (venv / "bin" / "pneumoscan", venv / "pneumoscan"):
        if script.exists():
            return [str(script)]
    raise SystemExit(f"{venv}: no bin/pneumoscan in this environment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="pneumoscan .tflite (default: the app's own choice)")
    parser.add_argument("--keras", type=Path, help="a Keras checkpoint to compare against")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", type=Path, help="a real film to predict with the gate on (default: a bundled sample)")
    parser.add_argument("--compare-venv", type=Path, help="another environment whose pneumoscan runs in the same loop")
    args = parser.parse_args()

    from edge_app.cli import SAMPLES_DIR

    real = args.image or sorted(SAMPLES_DIR.glob("NORMAL-*.jpeg"))[0]
    with tempfile.TemporaryDirectory(prefix="pneumoscan-cold-") as tmp:
        synthetic = write_synthetic_jpeg(Path(tmp) / "one.jpeg")
        model = ["--model", str(args.model)] if args.model else []
        gated = f"{'sample' if args.image is None else 'given'} film, gate on"
        cases = {gated: [str(real), *model], "1400x1100 film, --no-gate": [str(synthetic), "--no-gate", *model]}
        apps = {"pneumoscan": pneumoscan_command()}
        if args.compare_venv:
            apps[str(args.compare_venv)] = venv_command(args.compare_venv)
        commands = {(app, case): [*prefix, "predict", *argv] for app, prefix in apps.items() for case, argv in cases.items()}
        for command in commands.values():
            print(f"command: {' '.join(command)}")
            measure(command, clean_env())  # untimed: warms the page cache like a device that has run before
        print(f"machine: {load_note()}")
        runs: dict[tuple[str, str], list] = {key: [] for key in commands}
        for _ in range(args.runs):  # one run of each in turn: a load spike hits all of them alike
            for key, command in commands.items():
                runs[key].append(measure(command, clean_env()))
        medians = {key: report(f"{key[0][-24:]}: {key[1]}", result) for key, result in runs.items()}
        for case in cases:
            wall, peak = medians[("pneumoscan", case)]
            goal = "meets" if wall <= 0.5 and peak <= 80 else "misses"
            print(f"{case:<44} pneumoscan's median {goal} the goal of <= 0.5 s and <= 80 MB")
            if args.compare_venv:
                other = medians[(str(args.compare_venv), case)]
                print(f"{'':<44} {args.compare_venv} takes {other[0] / wall:.2f}x the wall time, {other[1] / peak:.2f}x the memory")
        from edge_app.model_file import resolve_model_path

        integrity_cost(resolve_model_path(args.model))
        if args.keras:
            keras_cmd = [sys.executable, "-c", KERAS_PREDICT, str(args.keras), str(real)]
            measure(keras_cmd, clean_env())
            tf = report("TensorFlow + Keras checkpoint", [measure(keras_cmd, clean_env()) for _ in range(args.runs)])
            edge = medians[("pneumoscan", gated)]
            print(f"{'':<44} pneumoscan is {tf[0] / edge[0]:.1f}x faster and uses {tf[1] / edge[1]:.1f}x less memory")


if __name__ == "__main__":
    main()
