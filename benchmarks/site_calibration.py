"""What a site profile buys on films the model's threshold was not chosen for: calibrate on one
half, screen the other half with ``--site``, compare with the model's own threshold.

    python benchmarks/site_calibration.py                         # shipped model, its validation films
    python benchmarks/site_calibration.py --crop 0 0.05 0.1 --sensitivity 0.95

The official test split is not on this machine, so the films are the shipped model's validation
films (``tests/data/shipped-model-validation.json``: chosen by patient, never trained on), as
they are and under a framing shift: every film cropped by ``--crop`` of its width and height on
each side, which makes the lungs fill more of the picture, as a tighter collimation or another
unit would. Each set is split by patient (seeded, per class) into a calibration half and a
held-out half. Everything runs through the installed CLI as a site would run it:
``pneumoscan calibrate HALF_A --out site.json`` then ``pneumoscan predict HALF_B --site
site.json --format json``; the model-threshold figures come from the same probabilities.

Last measured (shipped model 0.1.0+27df509044ee, sensitivity target 0.95, seed 0), held-out half:
see docs/calibration.md, "Measured".
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pneumoscan_command  # noqa: E402

from train.data import patient_of  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "tests" / "data" / "shipped-model-validation.json"


def crop(src: Path, dst: Path, share: float) -> None:
    with Image.open(src) as image:
        w, h = image.size
        dx, dy = int(w * share), int(h * share)
        (image.crop((dx, dy, w - dx, h - dy)) if share else image).save(dst, quality=95)


def split_halves(files: list[Path], seed: int) -> tuple[set[Path], set[Path]]:
    """Patients of each class shuffled with ``seed`` and dealt alternately into two halves."""
    a, b = set(), set()
    for label in ("NORMAL", "PNEUMONIA"):
        mine = [f for f in files if f.parent.name == label]
        patients = sorted({patient_of(f) for f in mine})
        random.Random(seed).shuffle(patients)
        first = set(patients[::2])
        a |= {f for f in mine if patient_of(f) in first}
        b |= {f for f in mine if patient_of(f) not in first}
    return a, b


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    referred = scores >= threshold
    return {
        "accuracy": float((referred == labels).mean()),
        "sensitivity": float(referred[labels].mean()),
        "specificity": float((~referred[~labels]).mean()),
        "referred": float(referred.mean()),
    }


def run_shift(files, share, args, work: Path) -> dict:
    a, b = split_halves(files, args.seed)
    for half, name in ((a, "A"), (b, "B")):
        for f in half:
            folder = work / name / f.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            crop(f, folder / f.name, share)
    model = ["--model", str(args.model)] if args.model else []
    site = work / "site.json"
    subprocess.run([*pneumoscan_command(), "calibrate", str(work / "A"), "--out", str(site),
                    "--sensitivity", str(args.sensitivity), *model], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = json.loads(site.read_text())
    out = subprocess.run([*pneumoscan_command(), "predict", str(work / "B"), "--site", str(site),
                          "--format", "json", *model], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(out.stderr)
    results = [r for r in json.loads(out.stdout) if "error" not in r]
    assert all(r["threshold_source"] == "site" for r in results)
    labels = np.array([Path(r["path"]).parent.name == "PNEUMONIA" for r in results])
    scores = np.array([r["probability"] for r in results])
    counts = profile["counts"]
    return {
        "crop": share,
        "calibration": f"{counts['NORMAL']}N/{counts['PNEUMONIA']}P",
        "held_out": f"{int((~labels).sum())}N/{int(labels.sum())}P",
        "site_threshold": profile["threshold"],
        "model_threshold": profile["model_threshold"],
        "site": metrics(labels, scores, profile["threshold"]),
        "model": metrics(labels, scores, profile["model_threshold"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "chest_xray")
    parser.add_argument("--model", type=Path, default=None, help="default: the installed model")
    parser.add_argument("--crop", type=float, nargs="+", default=[0.0, 0.05, 0.10])
    parser.add_argument("--sensitivity", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    files = [args.data / r["file"] for r in json.loads(RECORD.read_text())["images"]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} validation films missing under {args.data}, e.g. {missing[0]}")
    print(f"{'crop':>5}  {'calib':>9}  {'held out':>9}  {'threshold':>15}  "
          f"{'site acc/sens/spec':>19}  {'model acc/sens/spec':>19}")
    for share in args.crop:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_shift(files, share, args, Path(tmp))
        s, m = r["site"], r["model"]
        print(f"{share:>5.2f}  {r['calibration']:>9}  {r['held_out']:>9}  "
              f"{r['site_threshold']:.3f} vs {r['model_threshold']:.3f}  "
              f"{s['accuracy']:.3f}/{s['sensitivity']:.3f}/{s['specificity']:.3f}  "
              f"{m['accuracy']:.3f}/{m['sensitivity']:.3f}/{m['specificity']:.3f}", flush=True)


if __name__ == "__main__":
    main()
