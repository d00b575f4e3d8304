"""Throughput of `pneumoscan predict FOLDER` on N synthetic films, at 1 and 2 interpreter threads.

    python benchmarks/throughput.py --model edge_app/models/pneumoscan-int8.tflite [--count 500]

Writes N synthetic 1400x1100 JPEG films to a temporary folder, runs the real command on the folder
(a fresh process, results as JSON lines to a temporary file) once per thread count, and prints
images per second over the whole run (start-up included) and the median per-image latency.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_env, load_note, measure, pneumoscan_command  # noqa: E402

from edge_app.bench import write_synthetic_jpeg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="pneumoscan .tflite (default: the app's own choice)")
    parser.add_argument("--count", type=int, default=500, help="number of images")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--size", default="1400x1100", help="synthetic film size WxH")
    parser.add_argument("--source", type=Path, help="copy real X-rays from this folder instead (recursively, sorted)")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="pneumoscan-throughput-") as tmp:
        folder = Path(tmp) / "films"
        folder.mkdir()
        gate = []
        if args.source:
            real = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
            for i in range(args.count):
                shutil.copy(real[i % len(real)], folder / f"film-{i:05d}{real[i % len(real)].suffix}")
            print(f"{args.count} real X-rays from {args.source} in a temporary folder")
        else:
            for i in range(args.count):
                write_synthetic_jpeg(folder / f"film-{i:05d}.jpeg", seed=i, size=(width, height))
            # the input gate rightly refuses synthetic films; the timing is of decode + model
            gate = ["--no-gate"]
            print(f"{args.count} synthetic {width}x{height} JPEG films in a temporary folder (--no-gate)")
        print(f"machine: {load_note()}")
        for threads in (int(t) for t in args.threads.split(",")):
            out = Path(tmp) / f"results-{threads}.jsonl"
            command = [*pneumoscan_command(), "predict", str(folder), "--format", "jsonl", "--threads", str(threads), *gate]
            if args.model:
                command += ["--model", str(args.model)]
            with out.open("w") as handle:
                wall, peak, cpu = measure(command, clean_env(), stdout=handle, allowed_exits=(0, 1))  # 1: some refused
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            ok = [r for r in rows if "error" not in r]
            if not ok:
                raise SystemExit("no image was screened")
            refused = f", {args.count - len(ok)} refused" if len(ok) != args.count else ""
            latency = statistics.median(r["latency_ms"] for r in ok)
            print(
                f"threads {threads}: {args.count / wall:7.1f} images/s  ({wall:.2f} s wall incl. start-up, "
                f"CPU {cpu:.2f} s, median {latency:.2f} ms/image, peak RSS {peak:.1f} MB{refused})"
            )


if __name__ == "__main__":
    main()
