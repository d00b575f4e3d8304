"""The network as exported: the logit, plus a class-activation map the device can draw.

The device has no TensorFlow and so no gradients; Grad-CAM is out of reach. But this CNN's head is
``features -> global average pooling -> dense (ReLU) -> logit``, so the same head can be applied
at every spatial position of the ``features`` map instead of after pooling: two 1x1 convolutions
carrying the dense and logit weights. The result, ``heatmap`` with shape ``[1, h, w, 1]``, is a
*local logit*: how strongly the patch under each cell on its own looks like pneumonia, in the
same units as the model's logit. Because of the ReLU it is not an exact decomposition of the
global logit (the mean of the map is not the logit), but it is computed by the very weights that
make the decision, it costs two tiny convolutions, and it survives int8 quantisation.

The logit (not the sigmoid) is the first output: an int8 probability has 256 levels and a
confident model would tie most images at the top one, destroying the ranking (AUC).

A model with a pattern head (``train/heads.py``) gets a third output, ``pattern``: the pattern
head's logit(s), for the same reason before its sigmoid or softmax. The heatmap stays the
screening head's: it shows where the film looks abnormal, not which pattern it has.
"""

from __future__ import annotations

import numpy as np

from train.heads import PATTERN_LOGIT_LAYER
from train.model import FEATURES_LAYER, LOGIT_LAYER

#: Signature names of the two outputs. The converter (TF 2.21) lists a signature's outputs in
#: ``get_output_details()`` in reverse alphabetical order, so these names put the logit first. The
#: device must not rely on that: it picks the one-value output, and the metadata records positions.
LOGIT_OUTPUT = "logit"
MAP_OUTPUT = "heatmap"
PATTERN_OUTPUT = "pattern"
INPUT_NAME = "image"

#: Layers the export graph is built from.
REQUIRED_LAYERS = (FEATURES_LAYER, "gap", "dense", LOGIT_LAYER)


def export_graph(model):
    """A Keras model with outputs ``[logit (1, 1), heatmap (1, h, w, 1)]`` (a local logit map), sharing ``model``'s
    layers and weights (nothing is retrained or copied except the head, into 1x1 convolutions);
    a model with a pattern head adds ``pattern`` (1, P) as a third output."""
    import keras
    from keras import layers

    features = model.get_layer(FEATURES_LAYER).output
    dense = model.get_layer("dense")
    logit = model.get_layer(LOGIT_LAYER)
    dense_kernel, dense_bias = dense.get_weights()
    logit_kernel, logit_bias = logit.get_weights()
    if dense_kernel.shape[0] != features.shape[-1]:
        raise ValueError(
            f"dense layer expects {dense_kernel.shape[0]} features, the features layer has "
            f"{features.shape[-1]}: the head is not global pooling followed by dense"
        )
    local_dense = layers.Conv2D(dense_kernel.shape[1], 1, activation=dense.activation, name="map_dense")
    local_logit = layers.Conv2D(1, 1, name=MAP_OUTPUT)
    heatmap = local_logit(local_dense(features))
    local_dense.set_weights([dense_kernel[None, None], dense_bias])
    local_logit.set_weights([logit_kernel[None, None], logit_bias])
    outputs = [logit.output, heatmap]
    if has_pattern(model):
        outputs.append(model.get_layer(PATTERN_LOGIT_LAYER).output)
    return keras.Model(model.inputs, outputs, name="pneumoscan_export")


def has_pattern(model) -> bool:
    return any(layer.name == PATTERN_LOGIT_LAYER for layer in model.layers)


def map_shape(graph) -> tuple[int, int, int, int]:
    """The static ``[1, h, w, 1]`` shape of the heatmap output."""
    _, h, w, c = graph.outputs[1].shape
    return (1, int(h), int(w), int(c))


def predict_graph(graph, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, ...]:
    """Keras ``(logits (n,), heatmaps (n, h, w))`` for uint8 images ``(n, s, s)``, and the
    pattern logits ``(n, P)`` third for a graph with a pattern output."""
    x = images[..., None].astype(np.float32)
    outputs = graph.predict(x, batch_size=batch_size, verbose=0)
    logits, maps = outputs[0], outputs[1]
    found = np.asarray(logits, dtype=np.float64).reshape(-1), np.asarray(maps, dtype=np.float64)[..., 0]
    if len(outputs) > 2:
        return (*found, np.asarray(outputs[2], dtype=np.float64))
    return found
