"""What a site profile buys on films the model's threshold was not chosen for: calibrate on one
half, screen the other half with ``--site``, compare with the model's own threshold.

    python benchmarks/site_calibration.py                         # shipped model, its validation films
    python benchmarks/site_calibration.py --crop 0 0.05 0.1 --sensitivity 0.95 --seeds 0 1 2 3 4

The official test split is not on this machine, so the films are the shipped model's validation
films (``tests/data/shipped-model-validation.json``: chosen by patient, never trained on), as
they are and under a framing shift: every film cropped by ``--crop`` of its width and height on
each side, which makes the lungs fill more of the picture, as a tighter collimation or another
unit would. Each set is split by patient (seeded, per class) into a calibration half and a
held-out half, once per seed. Everything runs through the installed CLI as a site would run it:
``pneumoscan calibrate HALF_A --out site.json`` (and again with ``--confident``), then
``pneumoscan predict HALF_B --site site.json --format json``; the figures at the other two
thresholds come from the same probabilities.

Last measured (shipped model 0.1.0+27df509044ee, target 0.95, seeds 0-4, ~5 min on 2 cores),
held-out half, mean accuracy/sensitivity/specificity (worst split's sensitivity): 10% crop, the
model's threshold 0.920/0.996/0.696 (0.994), site plain rule 0.965/0.961/0.975 (0.923), site
``--confident`` 0.969/0.985/0.923 (0.978); unshifted, 0.978/0.973/0.994 (0.964), 0.966/0.956/0.996
(0.928), 0.978/0.974/0.988 (0.949). Every row: docs/calibration.md, "Measured".
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


def run_shift(files, share, seed, args, work: Path) -> dict:
    a, b = split_halves(files, seed)
    for half, name in ((a, "A"), (b, "B")):
        for f in half:
            folder = work / name / f.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            crop(f, folder / f.name, share)
    model = ["--model", str(args.model)] if args.model else []
    profiles = {}
    for rule, extra in (("plain", []), ("confident", ["--confident"])):
        site = work / f"site-{rule}.json"
        subprocess.run([*pneumoscan_command(), "calibrate", str(work / "A"), "--out", str(site),
                        "--sensitivity", str(args.sensitivity), *extra, *model], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        profiles[rule] = json.loads(site.read_text())
    # One screening of the held-out half; the probabilities do not depend on the profile.
    out = subprocess.run([*pneumoscan_command(), "predict", str(work / "B"), "--site", str(work / "site-plain.json"),
                          "--format", "json", *model], capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(out.stderr)
    results = [r for r in json.loads(out.stdout) if "error" not in r]
    assert all(r["threshold_source"] == "site" for r in results)
    labels = np.array([Path(r["path"]).parent.name == "PNEUMONIA" for r in results])
    scores = np.array([r["probability"] for r in results])
    counts = profiles["plain"]["counts"]
    return {
        "crop": share,
        "seed": seed,
        "calibration": f"{counts['NORMAL']}N/{counts['PNEUMONIA']}P",
        "held_out": f"{int((~labels).sum())}N/{int(labels.sum())}P",
        "thresholds": {rule: p["threshold"] for rule, p in profiles.items()},
        "model_threshold": profiles["plain"]["model_threshold"],
        "plain": metrics(labels, scores, profiles["plain"]["threshold"]),
        "confident": metrics(labels, scores, profiles["confident"]["threshold"]),
        "model": metrics(labels, scores, profiles["plain"]["model_threshold"]),
    }


def _figures(m: dict) -> str:
    return f"{m['accuracy']:.3f}/{m['sensitivity']:.3f}/{m['specificity']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "chest_xray")
    parser.add_argument("--model", type=Path, default=None, help="default: the installed model")
    parser.add_argument("--crop", type=float, nargs="+", default=[0.0, 0.05, 0.10])
    parser.add_argument("--sensitivity", type=float, default=0.95)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    files = [args.data / r["file"] for r in json.loads(RECORD.read_text())["images"]]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} validation films missing under {args.data}, e.g. {missing[0]}")
    print("held-out half, accuracy/sensitivity/specificity; thresholds plain, confident, model")
    print(f"{'crop':>5} {'seed':>4}  {'calib':>9}  {'held out':>8}  {'thresholds':>20}  "
          f"{'plain rule':>17}  {'--confident':>17}  {'model threshold':>17}")
    for share in args.crop:
        rows = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                r = run_shift(files, share, seed, args, Path(tmp))
            rows.append(r)
            t = r["thresholds"]
            print(f"{share:>5.2f} {seed:>4}  {r['calibration']:>9}  {r['held_out']:>8}  "
                  f"{t['plain']:.3f} {t['confident']:.3f} {r['model_threshold']:.3f}  "
                  f"{_figures(r['plain']):>17}  {_figures(r['confident']):>17}  {_figures(r['model']):>17}", flush=True)
        for key in ("plain", "confident", "model"):
            sens = [r[key]["sensitivity"] for r in rows]
            spec = [r[key]["specificity"] for r in rows]
            acc = [r[key]["accuracy"] for r in rows]
            print(f"{share:>5.2f}  {key:>9}: mean accuracy {np.mean(acc):.3f}, sensitivity {np.mean(sens):.3f} "
                  f"(min {min(sens):.3f}), specificity {np.mean(spec):.3f} (min {min(spec):.3f})", flush=True)


if __name__ == "__main__":
    main()
