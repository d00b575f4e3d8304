"""Peak memory of screening the largest image the device accepts, and what reducing it costs.

    python benchmarks/memory.py [--model FILE] [--megapixels 39.9] [--old-source DIR]

1. Writes a film-like RGBA PNG just under :data:`edge_app.preprocessing.MAX_PIXELS` (40 MP, the
   hostile field test's case), and a 16-bit grayscale one, and runs ``pneumoscan predict FILE
   --no-gate`` on each in a fresh process under ``/usr/bin/time -v``; prints the peak RSS (goal
   <= 300 MB on a 2 GB device). ``--old-source DIR``: also run a copy of an older ``edge_app``
   (e.g. ``git archive 1d59317 edge_app | tar -x -C DIR``) on the same files, side by side.
2. How much the early box reduction changes what the model sees: the same large film prepared
   with and without it (max / mean absolute difference of the uint8 model input, and the score
   difference with the model), on up to 20 real training films upscaled to 4300 px (synthetic
   films if ``../shared/data`` is absent).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import clean_env, pneumoscan_command  # noqa: E402

from edge_app import preprocessing  # noqa: E402
from edge_app.preprocessing import MAX_PIXELS, PreprocessSpec, prepare_file  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "train"


def film_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A large uint8 film-like image, built at low resolution and upscaled (cheap to make)."""
    from conftest import synthetic_film

    small = Image.fromarray(synthetic_film(256, seed=seed))
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))


def peak_rss_mb(command: list[str], env: dict, cwd: Path | None = None) -> tuple[float, int]:
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, cwd=cwd)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return (int(match.group(1)) / 1024 if match else float("nan")), done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--megapixels", type=float, default=MAX_PIXELS / 1e6 - 0.1)
    parser.add_argument("--old-source", type=Path, help="folder holding an older edge_app/ to compare")
    args = parser.parse_args()

    width = int((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(args.megapixels * 1e6 / width)
    with tempfile.TemporaryDirectory(prefix="pneumoscan-mem-") as tmp:
        gray = film_like(height, width)
        rgba = Image.fromarray(np.dstack([gray, gray, gray, np.full_like(gray, 255)]), mode="RGBA")
        files = {"RGBA PNG": Path(tmp) / "huge-rgba.png", "16-bit PNG": Path(tmp) / "huge-16bit.png"}
        rgba.save(files["RGBA PNG"], compress_level=1)
        Image.fromarray(gray.astype(np.uint16) * 257).save(files["16-bit PNG"], compress_level=1)
        del rgba, gray
        print(f"images: {width}x{height} ({width * height / 1e6:.1f} MP), limit {MAX_PIXELS / 1e6:.0f} MP")
        for name, path in files.items():
            command = [*pneumoscan_command(), "predict", str(path), "--no-gate", "-f", "json"]
            if args.model:
                command += ["--model", str(args.model)]
            mb, code = peak_rss_mb(command, clean_env())
            line = f"{name:<11} peak RSS {mb:7.1f} MB (exit {code})"
            if args.old_source:
                env = {**clean_env(), "PYTHONPATH": str(args.old_source)}
                old_command = [sys.executable, "-m", "edge_app", *command[len(pneumoscan_command()):]]
                old_mb, old_code = peak_rss_mb(old_command, env, cwd=args.old_source)  # its edge_app first
                line += f"   older edge_app: {old_mb:7.1f} MB (exit {old_code}), {old_mb / mb:.1f}x"
            print(line + "   goal <= 300 MB")

        spec = PreprocessSpec(128)
        sources = sorted(DATA.rglob("*.jpeg"))[:: max(1, len(list(DATA.rglob("*.jpeg"))) // 20)][:20] if DATA.is_dir() else []
        diffs, score_diffs = [], []
        classifier = None
        try:
            from edge_app.model_file import load_classifier

            classifier = load_classifier(args.model)
            spec = classifier.preprocess
        except Exception as exc:  # noqa: BLE001 - the pixel comparison needs no model
            print(f"(no model for the score comparison: {exc})")
        for i in range(20):
            if sources:
                base = np.asarray(Image.open(sources[i % len(sources)]).convert("L"))
                big = np.asarray(Image.fromarray(base).resize((4300, 4300), Image.Resampling.BICUBIC))
            else:
                big = film_like(4300, 3600, seed=i)
            path = Path(tmp) / f"big-{i}.png"
            Image.fromarray(big).save(path, compress_level=1)
            reduced = prepare_file(path, spec).pixels
            original = preprocessing._reduce
            preprocessing._reduce = lambda image, factor: image  # the old path: no early reduction
            try:
                full = prepare_file(path, spec).pixels
            finally:
                preprocessing._reduce = original
            diffs.append(np.abs(reduced.astype(int) - full.astype(int)))
            if classifier is not None:
                score_diffs.append(abs(classifier.classify(reduced) - classifier.classify(full)))
        stack = np.stack(diffs)
        kind = "real training films upscaled to 4300 px" if sources else "synthetic 4300x3600 films"
        print(
            f"early reduction vs none, {len(diffs)} {kind}: model input max |diff| {stack.max()} gray levels, "
            f"mean {stack.mean():.3f}"
            + (f"; score max |diff| {max(score_diffs):.4f}, mean {np.mean(score_diffs):.4f}" if score_diffs else "")
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
