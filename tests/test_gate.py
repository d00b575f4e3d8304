"""The input gate on the device: what it refuses, why it says so, and where its limits come from.

Ranges come from the tiny model's contract (fitted at export on its synthetic training films, of
several sizes) or are fitted here; the images are made here. The rates on real films and photos
are measured by ``benchmarks/gate_rates.py``, not asserted in a unit test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import prepared, synthetic_film
from edge_app import preprocessing
from edge_app.classifier import Classifier
from edge_app.contract import ContractError, ModelContract, read_contract, read_metadata
from edge_app.gate import (
    FEATURE_NAMES,
    FEATURES_VERSION,
    MIN_SPANS,
    GateCheck,
    GateUnavailable,
    fit_gate,
    image_features,
    refusal,
    stored_gate,
)
from edge_app.preprocessing import PreprocessSpec, colourfulness, prepare_file
from edge_app.screening import NOT_A_CHEST_XRAY, Screener
from edge_helpers import TINY_MODEL, tiny_model  # noqa: F401


@pytest.fixture(scope="module")
def gate() -> dict:
    return stored_gate(read_contract(TINY_MODEL))


@pytest.fixture
def screener(tiny_model) -> Screener:
    return Screener(Classifier(tiny_model))


def save(array: np.ndarray, path, **kw):
    Image.fromarray(array).save(path, **kw)
    return path


def text_page(width: int = 400, height: int = 500) -> np.ndarray:
    page = Image.new("L", (width, height), 250)
    draw = ImageDraw.Draw(page)
    for y in range(10, height - 20, 18):
        draw.text((10, y), "Amoxicillin 250 mg  3x daily  ward 4  paid 1200", fill=10)
    return np.asarray(page)


# --- what is refused, and the words for it -----------------------------------------------------


@pytest.mark.parametrize("size", [64, 128, 300, 900])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_chest_films_of_any_size_pass(screener, tmp_path, size, fmt):
    path = save(synthetic_film(size, seed=size, opacity=float(size % 2)), tmp_path / f"f.{fmt}")
    result = screener.screen(path)
    assert result.ok, result.error


NON_XRAYS = {
    # name -> (image, words the reason must contain)
    "colour photo": (lambda: np.dstack([synthetic_film(200, seed=5)] * 3) * np.array([1.0, 0.6, 0.3]), "colour"),
    "blank white": (lambda: np.full((300, 300), 255), "blank"),
    "blank gray": (lambda: np.full((300, 300), 90), "blank"),
    "noise": (lambda: np.random.default_rng(0).integers(0, 256, (300, 300)), "fine detail"),
    "document": (text_page, None),
    "overexposed film": (lambda: np.clip(synthetic_film(300, seed=7).astype(int) * 1.5, 0, 255), "pure white"),
    "underexposed film": (lambda: np.clip(synthetic_film(300, seed=7).astype(int) - 100, 0, 255), "pure black"),
    "checkerboard": (lambda: np.kron(np.indices((8, 8)).sum(0) % 2 * 255, np.ones((40, 40))), None),
    "smooth gradient": (lambda: np.tile(np.linspace(0, 255, 300), (300, 1)), None),
}


@pytest.mark.parametrize("name", sorted(NON_XRAYS))
def test_non_xrays_are_refused_with_a_coded_reason(screener, tmp_path, name):
    make, words = NON_XRAYS[name]
    path = save(np.asarray(make()).astype(np.uint8), tmp_path / "x.png")
    result = screener.screen(path)
    assert not result.ok and result.error.startswith(f"{NOT_A_CHEST_XRAY}: "), result.error
    assert words is None or words in result.error, result.error
    assert result.to_dict() == {"path": str(path), "error": result.error}


def test_natural_photos_are_refused(screener, tmp_path):
    data = pytest.importorskip("skimage.data")
    for name in ("astronaut", "coffee", "chelsea", "camera", "rocket", "coins"):
        result = screener.screen(save(getattr(data, name)(), tmp_path / f"{name}.png"))
        assert not result.ok and result.error.startswith(NOT_A_CHEST_XRAY), (name, result.error)


def test_without_the_gate_anything_is_scored(tiny_model, tmp_path):
    path = save(np.full((300, 300), 255, np.uint8), tmp_path / "blank.png")
    assert Screener(Classifier(tiny_model), gate=False).screen(path).ok


def test_refusal_names_the_first_applicable_reason(gate):
    inside = {name: gate["features"][name]["median"] for name in FEATURE_NAMES}
    assert refusal(inside, gate) is None
    colour = {**inside, "colourfulness": 40.0, "std": 0.0}
    assert refusal(colour, gate).startswith("colour image")  # colour is named before blankness
    blank = {**inside, "std": 0.0}
    assert refusal(blank, gate) == "blank or nearly uniform image"
    tilted = {**inside, "lr_symmetry": -0.5}
    assert refusal(tilted, gate).startswith("no frontal chest shape")
    exposure = {**inside, "p50": 2.0}  # no specific reason covers it: the feature is named
    assert refusal(exposure, gate) == "image statistics unlike the training X-rays (p50)"


def test_unusual_in_many_ways_at_once_is_refused(gate):
    """Inside every widened range, but beyond the training quantiles in more than max_unusual
    features: a gray photo that is a little off everywhere (scikit-image's clock is one: darker
    and smoother than every training film)."""
    limits = gate["features"]
    inside = {name: limits[name]["median"] for name in FEATURE_NAMES}
    names = ["mean", "p50", "p95", "edge_energy", "std"]

    def nudged(count):
        out = dict(inside)
        for name in names[:count]:
            lim = limits[name]
            out[name] = (lim["q_low"] + lim["low"]) / 2  # past the quantile, inside the range
        return out

    most = gate["max_unusual"]
    assert refusal(nudged(most), gate) is None
    assert refusal(nudged(most + 1), gate) == (
        "image statistics unlike the training X-rays (" + ", ".join(n for n in FEATURE_NAMES if n in names[: most + 1]) + ")"
    )
    assert refusal(nudged(most + 1), {k: v for k, v in gate.items() if k != "max_unusual"}) is None


@pytest.mark.parametrize("pad", [
    lambda g: np.pad(g, 25),  # black
    lambda g: np.pad(g, 60, mode="edge"),
    lambda g: np.pad(g, ((40, 0), (0, 20)), constant_values=255),  # white, two sides only
])
def test_the_gate_measures_the_film_inside_its_padding(pad):
    from conftest import anatomical_film

    film = anatomical_film()
    plain = prepared(film).pixels
    padded = prepared(pad(film)).pixels
    plain_f, padded_f = (image_features(p, colourfulness=0.0) for p in (plain, padded))
    # Near, not equal: padding changes the percentile stretch of the whole square (preprocessing).
    assert padded_f["dark_fraction"] == pytest.approx(plain_f["dark_fraction"], abs=0.03)
    assert padded_f["edge_energy"] == pytest.approx(plain_f["edge_energy"], rel=0.2)
    assert padded_f["center_border"] == pytest.approx(plain_f["center_border"], abs=0.1)


def test_a_film_brighter_than_every_training_film_is_not_unusual_for_it(gate):
    """Consolidation makes a film brighter: a white-out lung is a little brighter than the
    training films in every brightness feature at once and must not be refused for that."""
    from edge_app.gate import BRIGHTER_IS_DISEASE

    limits = gate["features"]
    bright = {name: limits[name]["median"] for name in FEATURE_NAMES}
    for name in BRIGHTER_IS_DISEASE:
        bright[name] = (limits[name]["q_high"] + limits[name]["high"]) / 2
    assert len(BRIGHTER_IS_DISEASE) > gate["max_unusual"]
    assert refusal(bright, gate) is None
    darker = {**bright, **{n: (limits[n]["q_low"] + limits[n]["low"]) / 2 for n in BRIGHTER_IS_DISEASE}}
    assert refusal(darker, gate).startswith("image statistics unlike the training X-rays")


# --- colour: measured on the decoded image, once -----------------------------------------------


def test_colourfulness_is_zero_for_gray_stored_as_colour(tmp_path):
    film = synthetic_film(200)
    spec = PreprocessSpec(64)
    gray = prepare_file(save(film, tmp_path / "g.png"), spec)
    as_rgb = prepare_file(save(np.dstack([film] * 3), tmp_path / "rgb.jpeg", quality=90), spec)
    assert gray.colourfulness == 0.0 and as_rgb.colourfulness < 1.0
    assert colourfulness(np.dstack([film] * 3)) == 0.0


def test_colour_managed_gray_film_passes_but_a_tinted_photo_of_one_does_not(screener, tmp_path):
    film = synthetic_film(256, seed=3)
    noise = np.random.default_rng(1).integers(-1, 2, film.shape + (3,))
    jitter = np.clip(np.dstack([film] * 3).astype(int) + noise, 0, 255).astype(np.uint8)
    assert screener.screen(save(jitter, tmp_path / "managed.png")).ok
    sepia = (np.dstack([film] * 3) * np.array([1.0, 0.85, 0.65])).astype(np.uint8)
    result = screener.screen(save(sepia, tmp_path / "sepia.png"))
    assert not result.ok and "colour" in result.error


def test_the_file_is_decoded_once_for_model_input_and_gate(screener, tmp_path, monkeypatch):
    path = save(np.dstack([synthetic_film(128)] * 3), tmp_path / "f.png")
    opened = []
    real_open = preprocessing.open_image
    monkeypatch.setattr(preprocessing, "open_image", lambda p: opened.append(p) or real_open(p))
    assert screener.screen(path).ok
    assert [str(p) for p in opened] == [str(path)]


def test_colour_in_dicom_is_measured_too(screener, tmp_path):
    pytest.importorskip("pydicom")
    from test_dicom import make_dataset, save as save_dicom

    photo = (np.dstack([synthetic_film(128)] * 3) * np.array([1.0, 0.5, 0.2])).astype(np.uint8)
    result = screener.screen(save_dicom(make_dataset(photo, 8, "RGB"), tmp_path / "photo.dcm"))
    assert not result.ok and "colour" in result.error
    gray_rgb = np.dstack([synthetic_film(128)] * 3)
    assert screener.screen(save_dicom(make_dataset(gray_rgb, 8, "RGB"), tmp_path / "gray.dcm")).ok


# --- where the limits come from ----------------------------------------------------------------


def test_limits_come_from_the_contract_not_the_code(tiny_model, tmp_path):
    """The same image is refused or screened depending only on the ranges the model carries."""
    import json

    from edge_app.contract import write_metadata
    from edge_helpers import model_flatbuffer

    wide = json.loads(Path(f"{tiny_model}.json").read_text())
    for limits in wide["gate"]["features"].values():
        limits["low"], limits["high"] = limits["q_low"], limits["q_high"] = -1e9, 1e9
    other = tmp_path / "wide.tflite"
    other.write_bytes(model_flatbuffer(tiny_model))
    write_metadata(other, wide)
    path = save(np.full((300, 300), 255, np.uint8), tmp_path / "blank.png")
    assert not Screener(Classifier(tiny_model)).screen(path).ok
    assert Screener(Classifier(other)).screen(path).ok


def test_flat_training_colour_gets_a_minimum_span():
    films = [synthetic_film(64, seed=i) for i in range(20)]
    fitted = fit_gate(image_features(f, colourfulness=0.0) for f in films)
    limits = fitted["features"]["colourfulness"]
    assert limits["q_high"] == 0.0 and limits["high"] == pytest.approx(fitted["margin"] * MIN_SPANS["colourfulness"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.pop("gate"), "no input-gate statistics"),
        (lambda m: m["gate"].update(features_version=FEATURES_VERSION - 1), "version"),
        (lambda m: m["gate"]["features"].pop("texture_ratio"), "lack texture_ratio"),
        (lambda m: m["gate"].update(preprocessing_id="gray-64px-equalize-v1"), "fitted on gray-64px-equalize-v1"),
    ],
)
def test_a_model_without_usable_statistics_is_refused_before_any_image(tiny_model, change, message):
    metadata = read_metadata(tiny_model)
    change(metadata)
    with pytest.raises(GateUnavailable, match=message) as caught:
        stored_gate(ModelContract.from_dict(metadata))
    assert isinstance(caught.value, ContractError) and "re-export" in str(caught.value)


def test_watch_refuses_a_model_without_gate_statistics_in_one_line(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from edge_app import cli
    from edge_app.contract import write_metadata
    from edge_helpers import model_flatbuffer

    metadata = read_metadata(tiny_model)
    del metadata["gate"]
    old = tmp_path / "old.tflite"
    old.write_bytes(model_flatbuffer(tiny_model))
    write_metadata(old, metadata)
    (tmp_path / "inbox").mkdir()
    result = CliRunner().invoke(
        cli.app, ["watch", str(tmp_path / "inbox"), "--once", "--model", str(old), "--db", str(tmp_path / "a.sqlite")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no input-gate statistics" in result.stderr.strip().splitlines()[-1]


# --- orientation and shape through the whole gate (edge_app/orientation.py: test_orientation.py) --


def test_mirrored_films_look_mirrored_and_upright_ones_do_not():
    from conftest import anatomical_film
    from edge_app.gate import check_film
    from edge_app.orientation import orientation_refusal

    upright = [prepared(anatomical_film(seed=seed)) for seed in range(3)]
    mirrored = [prepared(np.ascontiguousarray(anatomical_film(seed=seed)[:, ::-1])) for seed in range(3)]
    ranges = fit_gate(image_features(f.pixels, colourfulness=0.0) for f in upright + mirrored)
    for film in upright:
        assert check_film(film.pixels, 0.0, ranges, film.shape) == GateCheck(None, mirrored=False)
    for film in mirrored:
        assert check_film(film.pixels, 0.0, ranges, film.shape) == GateCheck(None, mirrored=True)
        assert orientation_refusal(film.pixels, film.shape) is None  # decided with the score


def test_a_film_that_looks_mirrored_is_refused_only_when_scored_negative():
    from edge_app.orientation import MIRROR_CAUTION, MIRRORED

    assert GateCheck(None, mirrored=True).after_score(negative=True) == (MIRRORED, None)
    assert GateCheck(None, mirrored=True).after_score(negative=False) == (None, MIRROR_CAUTION)
    assert GateCheck(None).after_score(negative=True) == (None, None)


def _symmetry_only_gate(films) -> dict:
    """The films' fitted gate with every range but lr_symmetry's opened wide."""
    gate = fit_gate(image_features(f.pixels, colourfulness=0.0) for f in films)
    for name, limits in gate["features"].items():
        if name != "lr_symmetry":
            limits.update(low=-10.0, high=10.0, q_low=-10.0, q_high=10.0)
    return gate


def test_a_film_unusual_in_symmetry_alone_is_decided_with_the_score():
    from conftest import anatomical_film
    from edge_app.gate import ASYMMETRY_CAUTION, NO_CHEST_SHAPE, check_film

    films = [prepared(anatomical_film(seed=seed)) for seed in range(6)]
    lopsided = anatomical_film(seed=9).astype(np.float64)
    lopsided[:, :100] += 70  # an over-exposed left third
    film = prepared(np.clip(lopsided, 0, 255).astype(np.uint8))

    check = check_film(film.pixels, 0.0, _symmetry_only_gate(films), film.shape)
    assert check.refusal is None and check.asymmetric and not check.mirrored
    assert check.after_score(negative=True) == (NO_CHEST_SHAPE, None)
    assert check.after_score(negative=False) == (None, ASYMMETRY_CAUTION)

    # Out of range in another shape feature too: refused before it is scored, as before.
    strict = fit_gate(image_features(f.pixels, colourfulness=0.0) for f in films)
    assert check_film(film.pixels, 0.0, strict, film.shape).refusal is not None
    assert not check_film(film.pixels, 0.0, strict, film.shape).asymmetric
    # An ordinary film is not asymmetric.
    assert check_film(films[0].pixels, 0.0, _symmetry_only_gate(films), films[0].shape) == GateCheck(None)


def test_the_real_film_refused_for_symmetry_alone_is_screened_with_the_caution(shared_data):
    """person685_bacteria_2581: a frontal PNEUMONIA film with an over-exposed band down its left
    edge, the one training film the shipped model's gate refused."""
    from edge_app.gate import ASYMMETRY_CAUTION
    from edge_app.model_file import DEFAULT_MODEL
    from edge_app.results import CAUTION

    film = shared_data / "train" / "PNEUMONIA" / "person685_bacteria_2581.jpeg"
    if not film.is_file() or not DEFAULT_MODEL.is_file():
        pytest.skip("the film or the bundled model is absent")
    result = Screener(Classifier(DEFAULT_MODEL)).screen(film)
    assert result.error is None and result.label == "PNEUMONIA"
    assert result.extra[CAUTION] == ASYMMETRY_CAUTION


def test_check_film_names_the_first_reason_and_skips_the_rest():
    from conftest import anatomical_film
    from edge_app.gate import check_film

    film = prepared(anatomical_film())
    ranges = fit_gate([image_features(film.pixels, colourfulness=0.0)] * 3)
    assert check_film(film.pixels, 0.0, ranges, (900, 200)).refusal.startswith("extreme aspect ratio")
    assert check_film(film.pixels, 40.0, ranges, film.shape).refusal is not None  # colour, before orientation
    turned = prepared(np.ascontiguousarray(np.rot90(anatomical_film(), 2)))
    assert check_film(turned.pixels, 0.0, fit_gate([image_features(turned.pixels, colourfulness=0.0)] * 3), turned.shape).refusal.startswith("upside down")


def test_a_mirrored_film_is_refused_when_negative_and_screened_with_a_warning_when_positive(tmp_path, tiny_model):
    from conftest import anatomical_film
    from edge_app.orientation import MIRROR_CAUTION, MIRRORED

    mirrored = save(np.ascontiguousarray(anatomical_film()[:, ::-1]), tmp_path / "mirrored.png")
    upright = save(anatomical_film(), tmp_path / "upright.png")
    # Statistics ranges of films like these (the tiny model's synthetic films are unlike them).
    films = [prepared(anatomical_film(seed=s)[:, :: 1 - 2 * (s % 2)]) for s in range(10)]
    ranges = fit_gate(image_features(f.pixels, colourfulness=0.0) for f in films)
    seen = []

    def screener(threshold):
        screener = Screener(Classifier(tiny_model), threshold=threshold, on_warning=lambda p, m: seen.append(m))
        screener.gate = ranges
        return screener

    negative = screener(0.999)
    assert negative.screen(mirrored).error == f"{NOT_A_CHEST_XRAY}: {MIRRORED}"
    assert negative.screen(upright).label == "NORMAL" and not seen
    result = screener(0.001).screen(mirrored)
    assert result.ok and result.label == "PNEUMONIA"
    assert seen == [MIRROR_CAUTION]
    assert result.to_dict()["caution"] == MIRROR_CAUTION  # JSON, CSV and the audit log carry it
    from edge_app.results import advice

    assert advice(result).endswith("; check: the film may be mirrored left to right (check the R/L marker)")
    assert "caution" not in screener(0.001).screen(upright).to_dict()


def test_extreme_aspect_ratio_is_refused_through_the_screener(tmp_path, tiny_model):
    from edge_app.classifier import Classifier
    from edge_app.screening import Screener

    strip = np.tile(synthetic_film(100, seed=1), (1, 40))  # 4000 x 100, the field test's strip
    Image.fromarray(strip).save(tmp_path / "strip.png")
    wide = np.asarray(Image.fromarray(synthetic_film(200, seed=2)).resize((240, 200)))  # 1.2:1 passes this check
    Image.fromarray(wide).save(tmp_path / "wide.png")
    screener = Screener(Classifier(tiny_model))
    assert screener.screen(tmp_path / "strip.png").error == (
        "not a chest X-ray: extreme aspect ratio (40.0:1, a chest film is at most 2.5:1)"
    )
    assert "aspect" not in (screener.screen(tmp_path / "wide.png").error or "")


def test_gray_levels_floor_lets_an_ordinary_film_with_233_levels_pass():
    from edge_app.gate import GRAY_LEVELS_FLOOR, out_of_range

    gate = {"features_version": FEATURES_VERSION, "features": {"gray_levels": {"low": 0.959, "high": 1.01, "q_low": 0.97, "q_high": 1.0, "median": 1.0, "iqr": 0.0}}}
    assert out_of_range({"gray_levels": 233 / 256}, gate) == []
    assert out_of_range({"gray_levels": GRAY_LEVELS_FLOOR - 0.01}, gate) == ["gray_levels"]
