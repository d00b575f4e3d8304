"""Sustained images per minute of ``pneumoscan watch`` with the audit log in the loop.

    nice python benchmarks/watch_throughput.py --model tests/data/tiny-int8.tflite --images 200

Fills a temporary inbox with distinct synthetic 1400x1100 JPEG films (or copies of the files in
``--source``), lets a :class:`~edge_app.watch.Watcher` see them once, then times the poll that
hashes, claims, scores and records every one of them into a fresh SQLite log (WAL, each result
fsynced) in the same temporary folder. For comparison it also times scoring the same files
alone, so the last line says what hashing and the database cost per image. Runs ``--repeats``
times and prints medians, because a shared machine's load moves single runs by 2-3x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from edge_app.audit_log import AuditLog
from edge_app.bench import SYNTHETIC_SIZE, write_synthetic_jpeg
from edge_app.paths import expand_paths
from edge_app.model_file import load_classifier
from edge_app.screening import Screener
from edge_app.watch import Watcher


def fill_inbox(inbox: Path, count: int, source: Path | None) -> str:
    if source is None:
        for i in range(count):
            write_synthetic_jpeg(inbox / f"film-{i:04d}.jpeg", seed=i)
        return f"synthetic {SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]} JPEG"
    files = [item.source for item in expand_paths([source]) if item.error is None][:count]
    for path in files:
        shutil.copy(path, inbox / Path(path).name)
    return f"{len(files)} files from {source}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the installed one)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--source", type=Path, default=None, help="folder of real images to copy instead")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    classifier = load_classifier(args.model, threads=args.threads)
    screener = Screener(classifier)
    alone, looped = [], []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        described = fill_inbox(inbox, args.images, args.source)
        files = sorted(str(p) for p in inbox.iterdir())
        for path in files[:3]:  # warm the interpreter and the page cache alike for both timings
            screener.screen(path)
        for repeat in range(args.repeats):  # the machine is shared: report the median of a few
            start = time.perf_counter()
            for path in files:
                screener.screen(path)
            alone.append(time.perf_counter() - start)

            with AuditLog(Path(tmp) / f"pneumoscan-{repeat}.sqlite") as log:
                watcher = Watcher(inbox, log, screener.screen, classifier.contract.version)
                watcher.poll()  # first sighting: files must be seen unchanged twice
                start = time.perf_counter()
                watcher.poll()
                looped.append(time.perf_counter() - start)
                assert len(log.rows()) == len(files), "not every image was recorded"

    n = len(files)
    per_image = 1000 * statistics.median(looped) / n
    per_image_alone = 1000 * statistics.median(alone) / n
    print(f"inbox: {described}; model {classifier.contract.version} ({classifier.runtime}, {args.threads} thread)")
    print(f"{n} images recorded per run, {args.repeats} runs, each into a fresh log; medians:")
    print(
        f"watch throughput: {60_000 / per_image:.0f} images/min ({per_image:.1f} ms per image; "
        f"best run {60 * n / min(looped):.0f}, worst {60 * n / max(looped):.0f} images/min)"
    )
    print(
        f"scoring alone: {per_image_alone:.1f} ms per image; hashing + audit log: "
        f"{per_image - per_image_alone:.1f} ms per image"
    )


if __name__ == "__main__":
    main()
