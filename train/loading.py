"""Decode a list of samples into one in-memory uint8 array, through the device's preprocessing.

The whole training set at 224 px is ~260 MB, so it is decoded once (on all cores) and every epoch
reads from memory. Bad files are all collected first so the user sees every problem at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_app.preprocessing import ImageError, PreprocessSpec, prepare_file
from train.data import DataError, Sample


@dataclass
class LoadedSet:
    images: np.ndarray  # (n, size, size) uint8
    labels: np.ndarray  # (n,) int
    samples: list[Sample]
    bad: list[tuple[Path, str]]
    #: (n,) colourfulness of each decoded file, measured in the same decode (export's input gate).
    colourfulness: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _decode(args: tuple[str, PreprocessSpec]) -> tuple[np.ndarray, float] | str:
    path, spec = args
    try:
        prepared = prepare_file(path, spec)
    except ImageError as exc:
        return str(exc)
    return prepared.pixels, prepared.colourfulness


def load_samples(
    samples: list[Sample], spec: PreprocessSpec, skip_bad: bool = False, workers: int | None = None
) -> LoadedSet:
    """Decode ``samples``; unreadable files raise :class:`DataError` naming each one, or are
    dropped and reported when ``skip_bad`` is set."""
    workers = workers or min(4, os.cpu_count() or 1)
    jobs = [(str(s.path), spec) for s in samples]
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            decoded = list(pool.map(_decode, jobs, chunksize=64))
    else:
        decoded = [_decode(job) for job in jobs]

    bad = [(s.path, out) for s, out in zip(samples, decoded) if isinstance(out, str)]
    if bad and not skip_bad:
        lines = "\n".join(f"  {path}: {reason}" for path, reason in bad[:50])
        more = f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else ""
        raise DataError(
            f"{len(bad)} unreadable image(s); fix or remove them, or pass --skip-bad:\n{lines}{more}"
        )
    good = [(s, out) for s, out in zip(samples, decoded) if not isinstance(out, str)]
    if not good:
        raise DataError("no readable images left")
    images = np.stack([out[0] for _, out in good])
    labels = np.array([s.label for s, _ in good], dtype=np.int32)
    colour = np.array([out[1] for _, out in good], dtype=np.float64)
    return LoadedSet(images, labels, [s for s, _ in good], bad, colour)
