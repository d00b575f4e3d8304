"""``pneumoscan bench``: how fast and how big the app is on this device, in the terms IT checks.

Preprocessing (decode, grayscale, resize, normalise: the same call ``predict`` makes, so PNG,
JPEG and DICOM alike) and inference are timed separately, after a
warm-up that lets the interpreter and the caches settle, and reported as median and p95. Peak
memory is the process's maximum resident set size, which includes the interpreter and the
decoded image, i.e. what the device must have free.
"""

from __future__ import annotations

import resource
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
from PIL import Image

from edge_app.classifier import Classifier
from edge_app.decoding import decode_file

#: A typical pediatric film as it comes off a digitiser (the public set's median is ~1,300 px wide).
SYNTHETIC_SIZE = (1400, 1100)


def synthetic_xray(width: int = SYNTHETIC_SIZE[0], height: int = SYNTHETIC_SIZE[1], seed: int = 0) -> np.ndarray:
    """A grayscale image with a chest film's rough layout and texture, for timing only.

    Built a band of rows at a time so that making it does not raise the peak memory that
    ``bench`` measures (a whole 1400x1100 float image and its temporaries are ~50 MB).
    """
    rng = np.random.default_rng(seed)
    phase = np.float32(rng.uniform(0, 6))
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    out = np.empty((height, width), np.uint8)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)
    for top in range(0, height, 64):
        y = ys[top : top + 64, None]
        band = 170 + 40 * np.exp(-((x - 0.5) ** 2) / 0.01) + 12 * np.sin(y * 60 + phase)
        for cx in (0.3, 0.7):
            band -= 90 * np.exp(-(((x - cx) / 0.14) ** 2) - ((y - 0.5) / 0.3) ** 2)
        band += 4 * rng.standard_normal(band.shape, dtype=np.float32)
        out[top : top + 64] = np.clip(band, 0, 255)
    return out


def write_synthetic_jpeg(path: str | Path, seed: int = 0, size: tuple[int, int] = SYNTHETIC_SIZE) -> Path:
    Image.fromarray(synthetic_xray(*size, seed=seed)).save(path, quality=90)
    return Path(path)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


@dataclass
class BenchReport:
    model_path: str
    model_version: str
    runtime: str
    threads: int
    image: str
    runs: int
    warmup: int
    preprocess: dict
    inference: dict
    total: dict
    peak_rss_mb: float

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        def row(name: str, stats: dict) -> str:
            return f"{name:<14}median {stats['median_ms']:8.2f} ms   p95 {stats['p95_ms']:8.2f} ms"

        return [
            f"model          {self.model_path} (version {self.model_version})",
            f"runtime        {self.runtime}, {self.threads} thread{'s' if self.threads != 1 else ''}",
            f"image          {self.image}",
            f"runs           {self.runs} after {self.warmup} warm-up",
            row("preprocessing", self.preprocess),
            row("inference", self.inference),
            row("total", self.total),
            f"peak memory    {self.peak_rss_mb:.1f} MB (max resident set size of this process)",
        ]


def run_bench(
    classifier: Classifier, image: str | Path | None = None, runs: int = 50, warmup: int = 5
) -> BenchReport:
    """Time ``runs`` preprocessings and inferences of ``image`` (a synthetic film if ``None``)."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="pneumoscan-bench-") as tmp:
        if image is None:
            path = write_synthetic_jpeg(Path(tmp) / "synthetic.jpeg")
            label = f"synthetic {SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]} 8-bit JPEG"
        else:
            path, label = Path(image), str(image)
        spec = classifier.preprocess
        model_input = decode_file(path, spec).pixels  # fails early, with the reason, on a bad image
        for _ in range(warmup):
            classifier.classify(decode_file(path, spec).pixels)
        pre, inf = [], []
        for _ in range(runs):
            t0 = perf_counter()
            model_input = decode_file(path, spec).pixels
            t1 = perf_counter()
            classifier.classify(model_input)
            t2 = perf_counter()
            pre.append(t1 - t0)
            inf.append(t2 - t1)
    return BenchReport(
        model_path=str(classifier.model_path),
        model_version=classifier.contract.version,
        runtime=classifier.runtime,
        threads=classifier.threads,
        image=label,
        runs=runs,
        warmup=warmup,
        preprocess=_stats(pre),
        inference=_stats(inf),
        total=_stats([a + b for a, b in zip(pre, inf)]),
        peak_rss_mb=round(peak_rss_mb(), 1),
    )
