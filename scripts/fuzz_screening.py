"""Fuzz the screening entry point with mutated JPEG, PNG and DICOM files; report any escape.

    python scripts/fuzz_screening.py [--cases 3000] [--seconds 300] [--model FILE] [--seed 0]

Each case is a good film (JPEG, PNG, 16-bit PNG, DICOM explicit/implicit/bare, made here from
``tests/conftest.py``'s synthetic films) with random damage: bit flips, byte runs overwritten
with 0x00/0xFF/random bytes, truncation, duplicated or deleted spans, stretched length fields
(DICOM element lengths, PNG chunk lengths, JPEG segment lengths). Every case goes through
:meth:`edge_app.screening.Screener.screen` from a file on disk, gate on, as ``predict`` runs it.

An *escape* is anything but a result: an exception out of ``screen``, a case slower than
``--hang`` seconds, an error text that is not one line, or a DICOM case whose result or warnings
quote the patient's name or ID planted in every DICOM file. Exit status 1 if any; the summary
counts results by their first words.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import synthetic_film  # noqa: E402

PATIENT_NAME, PATIENT_ID = "Fuzzdoe^Janet", "MRN-424242"


def seeds() -> dict[str, bytes]:
    """The good files every case starts from."""
    film = synthetic_film(160, seed=4)
    out = {}
    for name, kwargs in (("film.jpeg", {"format": "JPEG", "quality": 90}), ("film.png", {"format": "PNG"})):
        buffer = io.BytesIO()
        Image.fromarray(film).save(buffer, **kwargs)
        out[name] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(film.astype(np.uint16) * 257).save(buffer, format="PNG")
    out["film16.png"] = buffer.getvalue()
    try:
        out.update(_dicom_seeds(film))
    except ImportError:
        print("(pydicom not installed: no DICOM cases)")
    return out


def _dicom_seeds(film: np.ndarray) -> dict[str, bytes]:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    out = {}
    for name, syntax, bare in (("film.dcm", ExplicitVRLittleEndian, False), ("IM0001", ImplicitVRLittleEndian, False), ("IM0002", ExplicitVRLittleEndian, True)):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.SOPClassUID = DigitalXRayImageStorageForPresentation
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "PA"
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT_NAME, PATIENT_ID, "20190304"
        ds.WindowCenter, ds.WindowWidth = 2048, 4000
        ds.set_pixel_data(film.astype(np.uint16) * 16, "MONOCHROME2", 12)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=not bare, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
        out[name] = buffer.getvalue()[132:] if bare else buffer.getvalue()
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        kind = rng.random()
        n = len(data)
        if n == 0:
            break
        at = rng.randrange(n)
        if kind < 0.35:
            data[at] ^= 1 << rng.randrange(8)
        elif kind < 0.55:
            run = rng.randint(1, 64)
            fill = rng.choice((b"\x00", b"\xff", None))
            data[at : at + run] = (fill * run) if fill else bytes(rng.randrange(256) for _ in range(run))
        elif kind < 0.65:
            del data[rng.randrange(n // 4, n) if n > 4 else n :]  # truncate
        elif kind < 0.75:
            end = min(n, at + rng.randint(1, 512))
            data[at:at] = data[at:end]  # duplicate a span
        elif kind < 0.85:
            del data[at : at + rng.randint(1, 256)]
        else:  # stretch a 2- or 4-byte little/big-endian length-like field
            width = rng.choice((2, 4))
            if at + width <= n:
                value = rng.choice((0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, int.from_bytes(data[at : at + width], "little") + rng.randint(1, 4096)))
                data[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, rng.choice(("little", "big")))
    return bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=300.0, help="stop after this long, whatever --cases says")
    parser.add_argument("--hang", type=float, default=5.0, help="a case slower than this is an escape")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from edge_app.model_file import load_classifier
    from edge_app.screening import Screener

    warnings_seen: list[str] = []
    screener = Screener(load_classifier(args.model), on_warning=lambda p, m: warnings_seen.append(m))
    rng = random.Random(args.seed)
    base = seeds()
    names = sorted(base)
    outcomes: Counter[str] = Counter()
    escapes: list[str] = []
    start = time.monotonic()
    done = 0
    with tempfile.TemporaryDirectory(prefix="pneumoscan-fuzz-") as tmp:
        for case in range(args.cases):
            if time.monotonic() - start > args.seconds:
                break
            name = names[case % len(names)]
            path = Path(tmp) / f"{case:06d}-{name}"
            path.write_bytes(mutate(base[name], rng))
            warnings_seen.clear()
            began = time.monotonic()
            try:
                result = screener.screen(path)
            except BaseException as exc:  # noqa: BLE001 - this is what we are looking for
                escapes.append(f"{path.name}: {type(exc).__name__}: {exc}")
                if isinstance(exc, KeyboardInterrupt):
                    raise
                continue
            finally:
                took = time.monotonic() - began
            done += 1
            if took > args.hang:
                escapes.append(f"{path.name}: took {took:.1f} s")
            text = " ".join([result.error or "", repr(result.to_dict()), *warnings_seen])
            if result.error is not None and "\n" in result.error:
                escapes.append(f"{path.name}: multi-line error {result.error!r}")
            if PATIENT_NAME.split("^")[0] in text or PATIENT_ID in text:
                escapes.append(f"{path.name}: patient identifier in the output: {text[:200]!r}")
            if result.error is None:
                outcomes["screened"] += 1
            else:
                outcomes[" ".join(result.error.split()[:4])] += 1
            path.unlink()
    elapsed = time.monotonic() - start
    print(f"{done} cases in {elapsed:.0f} s ({len(base)} seed files: {', '.join(names)}), seed {args.seed}")
    for outcome, count in outcomes.most_common(15):
        print(f"  {count:6d}  {outcome}")
    print(f"escapes: {len(escapes)}")
    for line in escapes[:20]:
        print(f"  {line}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
