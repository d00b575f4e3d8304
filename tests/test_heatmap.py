"""Heatmaps: drawing the local logit map, naming and placing the files, and parity with Keras.

The parity test trains nothing: it builds a small network with ``train.model``, settles its
batch-norm statistics on synthetic films, converts it to int8 with the export code, and compares
the device's map (TFLite second output, read by the device classifier) with the map computed
here from the Keras layers' own weights. It needs TensorFlow and is skipped without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_film
from edge_app.classifier import Classifier
from edge_app.contract import ContractError
from edge_app.heatmap import (
    OVERLAY_MAX_SIDE,
    HeatmapError,
    HeatmapWriter,
    base_name,
    check_folder,
    overlay,
    strength,
    upsample,
)
from edge_app.preprocessing import display_shape
from edge_app.screening import Screener
from edge_helpers import model_flatbuffer, tiny_metadata, tiny_model  # noqa: F401


# --- drawing -----------------------------------------------------------------------------------


def test_overlay_has_the_films_size_and_marks_the_hot_cell():
    film = np.full((300, 200), 100, np.uint8)
    local = np.zeros((4, 4))
    local[0, 3] = 5.0  # top-right cell
    image = np.asarray(overlay(film, local)).astype(int)
    assert image.shape == (300, 200, 3)
    red_minus_blue = image[..., 0] - image[..., 2]
    assert red_minus_blue[:40, -40:].mean() > 50  # coloured where the map is high
    assert np.abs(red_minus_blue[-100:, :100]).max() == 0  # the film untouched where it is low


def test_flat_map_leaves_the_film_as_it_is():
    film = synthetic_film(128)
    image = np.asarray(overlay(film, np.full((2, 2), 3.0)))
    assert (image == film[..., None]).all()


def test_how_strongly_a_map_is_drawn_depends_on_the_threshold_not_the_image():
    film = synthetic_film(128)
    normal = np.array([[-12.0, -9.0], [-8.0, -5.0]])  # every cell far below a 0.3 threshold
    assert (np.asarray(overlay(film, normal, threshold=0.3)) == film[..., None]).all()
    assert strength(normal, 0.3) == 0.0 and strength(normal, None) == 1.0
    likely = normal + 20.0  # same shape, every cell far above
    assert strength(likely, 0.3) == pytest.approx(1.0)
    drawn = np.asarray(overlay(film, likely, threshold=0.3)).astype(int)
    assert (drawn[..., 0] - drawn[..., 2]).max() > 50
    assert 0.0 < strength(np.array([[-1.0, 0.0]]), 0.3) < 0.5  # just above: a faint tint


def test_upsample_keeps_cells_in_place():
    local = np.array([[0.0, 1.0], [2.0, 3.0]])
    big = upsample(local, 100, 60)
    assert big.shape == (100, 60)
    assert big[0, 0] == pytest.approx(0.0) and big[-1, -1] == pytest.approx(3.0)


def test_overlay_refuses_what_is_not_a_film():
    with pytest.raises(ValueError, match="2-D uint8"):
        overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 2)))


# --- files: names, folders, never overwriting ----------------------------------------------------


def test_names_follow_the_input_and_differ_by_folder(tmp_path):
    a, b = tmp_path / "a" / "x ray.png", tmp_path / "b" / "x ray.png"
    assert base_name(a).startswith("x_ray.png-") and base_name(a) != base_name(b)
    assert base_name(a) == base_name(a)  # stable: the same input gets the same name
    assert base_name(tmp_path / "IM000012") .startswith("IM000012-")


def test_writer_never_replaces_a_file(tmp_path):
    writer = HeatmapWriter(tmp_path)
    film, local = synthetic_film(64), np.eye(2)
    first = writer.write("scans/x.png", film, local)
    before = first.read_bytes()
    second = writer.write("scans/x.png", film, local)
    assert first != second and second.name.startswith(first.name.removesuffix(".heatmap.png") + "-")
    assert first.read_bytes() == before
    assert writer.write("scans/x.png", film, local) == second  # the same picture: not written again
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no temp files


def test_names_for_one_path_never_run_out(tmp_path):
    writer = HeatmapWriter(tmp_path)
    film = synthetic_film(64)
    rng = np.random.default_rng(0)
    written = {writer.write("scans/x.png", film, rng.normal(size=(4, 4))) for _ in range(1100)}
    assert len(written) == 1100 and len(list(tmp_path.iterdir())) == 1100


def test_heatmaps_are_never_screened_as_films(tiny_model, tmp_path):
    from edge_app.preprocessing import ImageError, PreprocessSpec, prepare_file

    written = HeatmapWriter(tmp_path).write("x.png", synthetic_film(128), np.ones((4, 4)))
    renamed = written.rename(tmp_path / "IM-0001.png")
    with pytest.raises(ImageError, match="a heatmap pneumoscan wrote, not an X-ray"):
        prepare_file(renamed, PreprocessSpec(64))


def test_folder_inside_or_beside_inputs_is_refused(tmp_path):
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    film = scans / "sub" / "a.png"
    Image.fromarray(synthetic_film(64)).save(film)
    for bad, inputs in [
        (scans, [str(scans)]),
        (scans / "heat", [str(scans)]),
        (scans / "sub", [str(film)]),
        (scans / "sub" / "maps", [str(film)]),  # below an input file's folder (issue 13.7)
        (tmp_path / "link", [str(scans)]),  # a symbolic link into an input folder
    ]:
        if bad.name == "link" and not bad.is_symlink():
            bad.symlink_to(scans / "sub")
        with pytest.raises(HeatmapError, match="heatmaps must go elsewhere"):
            check_folder(bad, inputs)
        assert not (scans / "heat").exists()
    made = check_folder(tmp_path / "out" / "heat", [str(scans)])
    assert made.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(HeatmapError, match="is a file"):
        check_folder(tmp_path / "file", [str(scans)])


# --- the device side: the map output and the screener --------------------------------------------


def test_classifier_returns_probability_and_map_from_one_run(tiny_model):
    classifier = Classifier(tiny_model)
    film = np.asarray(Image.fromarray(synthetic_film(96, opacity=1.0)).resize((64, 64)))
    probability, local = classifier.classify_with_map(film)
    assert probability == pytest.approx(classifier.classify(film), abs=1e-9)
    assert local.shape == tuple(tiny_metadata()["outputs"]["heatmap"]["shape"][1:3])
    assert classifier.contract.heatmap is not None and np.isfinite(local).all()


def test_screener_writes_heatmaps_at_the_films_aspect_ratio(tiny_model, tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    sizes = {"wide.png": (300, 180), "big.jpeg": (1000, 800), "small.png": (96, 96)}
    for name, (w, h) in sizes.items():
        film = np.asarray(Image.fromarray(synthetic_film(max(w, h), seed=w)).resize((w, h)))
        Image.fromarray(film).save(inputs / name)
    screener = Screener(Classifier(tiny_model), heatmaps=HeatmapWriter(out))
    for name, (w, h) in sizes.items():
        result = screener.screen(inputs / name)
        assert result.ok, result.error
        path = Path(result.to_dict()["heatmap"])
        assert path.parent == out and path.name.startswith(f"{name}-")
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            assert image.size[::-1] == display_shape(h, w, OVERLAY_MAX_SIDE)
    assert sorted(p.name for p in inputs.iterdir()) == sorted(sizes)  # nothing next to the inputs


def test_a_model_without_the_map_output_is_refused_for_heatmaps(tiny_model, tmp_path):
    from edge_app.contract import write_metadata

    metadata = tiny_metadata()
    del metadata["outputs"]
    old = tmp_path / "old.tflite"
    old.write_bytes(model_flatbuffer(tiny_model))
    write_metadata(old, metadata)
    classifier = Classifier(old)
    assert classifier.contract.heatmap is None
    with pytest.raises(ContractError, match="no heatmap output"):
        classifier.classify_with_map(np.zeros((64, 64), np.uint8))
    with pytest.raises(ContractError, match="no heatmap output"):
        Screener(classifier, heatmaps=HeatmapWriter(tmp_path))


def test_a_failed_heatmap_write_keeps_the_score(tiny_model, tmp_path):
    film = tmp_path / "f.png"
    Image.fromarray(synthetic_film(96)).save(film)
    seen = []
    gone = tmp_path / "unplugged-usb-stick"  # the folder vanished after it was checked
    screener = Screener(Classifier(tiny_model), on_warning=lambda p, m: seen.append(m), heatmaps=HeatmapWriter(gone))
    result = screener.screen(film)
    assert result.ok and result.score is not None
    assert result.to_dict()["heatmap"] is None and "cannot write heatmap" in seen[0]


# --- parity: int8 TFLite map on the device vs the Keras model's own map ---------------------------


@pytest.fixture(scope="module")
def keras_and_tflite(tmp_path_factory):
    pytest.importorskip("tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from edge_app.contract import write_metadata
    from export.calibration import representative_dataset
    from export.graph import export_graph
    from export.tflite import convert
    from train.config import TrainConfig
    from train.model import build_model

    keras.utils.set_random_seed(0)
    config = TrainConfig(image_size=64, filters=(8, 16, 16), dense_units=16)  # an 8x8 map
    model = build_model(config)
    films = np.stack([synthetic_film(64, seed=i, opacity=float(i % 2)) for i in range(48)])
    x = films[..., None].astype(np.float32)
    # Batch-norm statistics of these films, as training would have left them (see make_tiny_model).
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(x, training=True)

    flatbuffer = convert(export_graph(model), "int8", 64, representative_dataset(films[:32]))
    path = tmp_path_factory.mktemp("parity") / "parity-int8.tflite"
    path.write_bytes(flatbuffer)
    metadata = tiny_metadata()
    metadata["outputs"]["heatmap"]["shape"] = [1, 8, 8, 1]
    write_metadata(path, metadata)
    return model, Classifier(path), films[32:]


@pytest.mark.slow
def test_device_map_matches_the_keras_models_map(keras_and_tflite):
    import keras

    from train.model import FEATURES_LAYER, LOGIT_LAYER

    model, classifier, films = keras_and_tflite
    features = keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output)
    maps = np.asarray(features.predict(films[..., None].astype(np.float32), verbose=0), np.float64)
    dense_kernel, dense_bias = model.get_layer("dense").get_weights()
    logit_kernel, logit_bias = model.get_layer(LOGIT_LAYER).get_weights()
    # The head (dense + ReLU, then the logit unit) applied at every cell of the last feature map.
    keras_maps = (np.maximum(maps @ dense_kernel + dense_bias, 0.0) @ logit_kernel + logit_bias)[..., 0]

    correlations = []
    for film, expected in zip(films, keras_maps):
        _, device = classifier.classify_with_map(film)
        assert device.shape == expected.shape == (8, 8)
        correlations.append(np.corrcoef(device.ravel(), expected.ravel())[0, 1])
    assert min(correlations) >= 0.9, correlations
    assert json.dumps(classifier.contract.raw["outputs"]["heatmap"]["shape"]) == "[1, 8, 8, 1]"
