"""Seconds per epoch of ``pneumoscan-train fit``: TensorFlow backend, JAX backend, two JAX processes.

    python benchmarks/train_backends.py ../shared/data/chest_xray --limit-per-class 300 --rounds 2

Runs the same fit (same data subset, image size, batch and seed) as separate processes, in turn,
``--rounds`` times, so a busy machine slows every configuration alike; prints the median of each
run's median epoch time (the first, compiling epoch is the slowest of three and drops out), the
CPU seconds the processes used, and each configuration's ratio to the TensorFlow backend.
The two-process run trains data-parallel on this one machine (127.0.0.1): it shows the cost of
the distributed path, not a speed-up (both processes share the same cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_env, load_note  # noqa: E402
from train.distributed import free_coordinator_port  # noqa: E402


def run_fit(fit_args: list[str], out: Path, backend: str, processes: int) -> dict:
    """One fit; returns process 0's metrics plus wall and CPU seconds of all its processes."""
    base = [sys.executable, "-m", "train", "fit", *fit_args, "--out", str(out)]
    env = clean_env(KERAS_BACKEND=backend)
    start = time.perf_counter()
    if processes == 1:
        commands = [base]
    else:
        port = free_coordinator_port()
        commands = [
            [*base, "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes), "--process-id", str(i)]
            for i in range(processes)
        ]
    logs = [tempfile.TemporaryFile(mode="w+") for _ in commands]
    children = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=log, env=env) for c, log in zip(commands, logs)]
    cpu = 0.0
    for child, log in zip(children, logs):
        _, status, usage = os.wait4(child.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(child.args)} failed:\n{log.read()[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "wall": time.perf_counter() - start,
        "cpu": cpu,
        "auc": metrics["auc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--limit-per-class", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-two-process", action="store_true", help="Skip the two-process JAX run")
    args = parser.parse_args()

    fit_args = [
        str(args.data), "--limit-per-class", str(args.limit_per_class), "--image-size", str(args.image_size),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--patience", str(args.epochs),
    ]
    configurations = [("tensorflow", 1), ("jax", 1)] + ([] if args.no_two_process else [("jax", 2)])
    results: dict[tuple[str, int], list[dict]] = {c: [] for c in configurations}
    print(f"{load_note()} at start; fit {' '.join(fit_args)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for backend, processes in configurations:
                out = Path(tmp) / f"{backend}-{processes}-{round_}"
                result = run_fit(fit_args, out, backend, processes)
                results[(backend, processes)].append(result)
                print(
                    f"round {round_ + 1}: {backend:<10} x{processes}  {result['seconds_per_epoch']:6.1f} s/epoch  "
                    f"wall {result['wall']:6.1f} s  cpu {result['cpu']:6.1f} s  val AUC {result['auc']:.3f}",
                    flush=True,
                )
    print(f"\n{load_note()} at end")
    reference = statistics.median(r["seconds_per_epoch"] for r in results[("tensorflow", 1)])
    print(f"{'configuration':<24} {'s/epoch':>8} {'ratio to TF':>12} {'cpu s/run':>10}")
    for (backend, processes), runs in results.items():
        per_epoch = statistics.median(r["seconds_per_epoch"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        name = f"{backend}, {processes} process{'es' if processes > 1 else ''}"
        print(f"{name:<24} {per_epoch:8.1f} {per_epoch / reference:12.2f} {cpu:10.1f}")


if __name__ == "__main__":
    main()
