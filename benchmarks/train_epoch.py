"""Seconds per epoch and peak memory of a full-size training fit on this machine.

    python benchmarks/train_epoch.py ../shared/data/chest_xray --image-size 128 --epochs 2

Trains into a temporary folder (deleted afterwards) with the default recipe and prints the
decode time, the median seconds per epoch and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from train.config import TrainConfig
from train.fit import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--image-size", type=int, default=TrainConfig.image_size)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(data=str(args.data), image_size=args.image_size, epochs=args.epochs)
        metrics = fit(config, Path(tmp) / "run", log=lambda m: None)
    data = config.extra["data"]
    print(f"cores: {os.cpu_count()}  image size: {args.image_size}px  epochs: {metrics['epochs_run']}")
    print(f"images decoded: {sum(data['train'].values()) + sum(data['validation'].values())} in {data['decode_seconds']} s")
    print(f"seconds per epoch (median): {metrics['seconds_per_epoch']}")
    print(f"wall time incl. decode, evaluation and stress test: {metrics['wall_seconds']} s")
    print(f"peak RSS: {metrics['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
