"""Shared test helpers: synthetic chest-film-like images the tests make themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "chest_xray"


def synthetic_film(size: int = 128, seed: int = 0, opacity: float = 0.0, side: float = 0.7) -> np.ndarray:
    """A grayscale image shaped loosely like a frontal chest film: bright mediastinum and
    ribs-like texture, two dark lung fields, and optional hazy opacity in the lung centred at
    ``side`` (0.7: the image's right-hand lung; 0.3 the other)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 170 + 40 * np.exp(-((x - 0.5) ** 2) / 0.01)
    for cx in (0.3, 0.7):
        img -= 90 * np.exp(-(((x - cx) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
    img += 12 * np.sin(y * 60 + rng.uniform(0, 6))
    if opacity:
        img += opacity * 70 * np.exp(-(((x - side) / 0.1) ** 2 + ((y - 0.6) / 0.12) ** 2))
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def anatomical_film(size: int = 256, seed: int = 0) -> np.ndarray:
    """A synthetic upright frontal film with the asymmetries a real one has and
    :func:`synthetic_film` lacks: shoulders above, abdomen below the diaphragm, the heart's
    shadow to the image's right (the patient's left). For the orientation tests."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.full((size, size), 150.0)
    img += 60 * (y > 0.78)  # abdomen
    img += 30 * np.exp(-((x - 0.5) ** 2) / 0.01)  # mediastinum
    for cx in (0.3, 0.7):
        img -= 100 * np.exp(-(((x - cx) / 0.13) ** 2 + ((y - 0.45) / 0.27) ** 2))
    img += 150 * np.exp(-(((x - 0.64) / 0.12) ** 2 + ((y - 0.62) / 0.1) ** 2))  # heart
    img += 35 * np.exp(-(((y - 0.05) / 0.08) ** 2))  # shoulders and neck
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def prepared(gray: np.ndarray, size: int = 64):
    """A decoded 8-bit gray film through the device's preprocessing (a ModelInput)."""
    from edge_app.preprocessing import PreprocessSpec, prepare_array

    return prepare_array(np.ascontiguousarray(gray).astype(np.float32), 255.0, PreprocessSpec(size))


def write_dataset(
    root: Path, per_class: int = 12, size: int | tuple[int, ...] = 96, patients: int = 6, viral: bool = False
) -> Path:
    """``root/train/{NORMAL,PNEUMONIA}`` with Kermany-style names and learnable classes.

    ``size`` may be several sizes, used in turn: a model's input-gate ranges then cover films of
    all of them, as the tests' films come in many sizes. ``viral``: every other PNEUMONIA film is
    ``personN_virus_M`` with its opacity in the other lung (a learnable second pattern).
    """
    sizes = (size,) if isinstance(size, int) else tuple(size)
    for label, folder in enumerate(("NORMAL", "PNEUMONIA")):
        d = root / "train" / folder
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            virus = viral and label == 1 and i % 2 == 1
            img = synthetic_film(
                sizes[i % len(sizes)], seed=label * 1000 + i, opacity=float(label), side=0.3 if virus else 0.7
            )
            patient = i % patients
            kind = "virus" if virus else "bacteria"
            name = f"IM-{patient:04d}-{i:04d}.jpeg" if label == 0 else f"person{patient}_{kind}_{i}.jpeg"
            Image.fromarray(img).save(d / name, quality=95)
    return root


@pytest.fixture
def film() -> np.ndarray:
    return synthetic_film()


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data")


def write_class_folders(root: Path, classes: dict[str, tuple[float, float]], per_class: int = 30, size: int = 64) -> Path:
    """``root/<class>/`` folders of synthetic films, one learnable look per class: ``classes``
    maps a folder name to (opacity, side) for :func:`synthetic_film`. Each file is its own
    patient (the names follow no known scheme)."""
    for c, (name, (opacity, side)) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = synthetic_film(size, seed=100 * c + i, opacity=opacity, side=side)
            Image.fromarray(img).save(folder / f"{name.lower()}-{i:03d}.png")
    return root


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "train" / "NORMAL").is_dir():
        pytest.skip("../shared/data/chest_xray is not present")
    return SHARED_DATA


def run_fingerprint(run: Path) -> dict[str, str]:
    """SHA-256 of a run folder's checkpoint, config and metrics: equal before and after a command
    that must only read the run."""
    import hashlib

    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in ("model.keras", "metrics.json", "config.json")}


@pytest.fixture(scope="session")
def toy_pattern_run(tmp_path_factory) -> Path:
    """A small run trained with ``--pattern`` on a toy Kermany layout (bacterial and viral file
    names), shared by the tests of the commands that derive runs from one (refit-pattern,
    screening-only). Tests only read it."""
    pytest.importorskip("tensorflow")
    from train.config import TrainConfig
    from train.fit import fit

    root = tmp_path_factory.mktemp("pattern-run")
    data = write_dataset(root / "data", per_class=40, size=64, patients=20, viral=True)
    config = TrainConfig(data=str(data), pattern=True, image_size=64, epochs=6, batch_size=4, learning_rate=3e-3,
                         augment=False, filters=(4, 8, 8, 8, 8), dense_units=8, validation_fraction=0.3,
                         early_stopping_patience=6)
    fit(config, root / "run", log=lambda m: None)
    return root / "run"
