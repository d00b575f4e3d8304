"""Start a run's convolutional backbone from another run's weights (``fit --init-from RUN``).

Why: a pattern network trained from scratch on the positive films alone (~3,300 Kermany films,
bacterial vs viral) learns slowly: its validation AUC was 0.69 after 4 epochs, where a screening
run is past 0.97. A screening run's backbone already knows what lungs and opacities look like;
starting from it, the new run only has to learn what tells one pattern from another.

What is copied: the convolution and batch-normalisation layers up to ``features``, each only
when the new model has a layer of the same name with weights of the same shapes (the same
``--filters``); anything else is refused, so a run never starts half-copied without saying so.
The head (``dense``, ``logit``, a pattern head) starts fresh: its meaning is the new run's.
The copied layers stay trainable (fine-tuning, not a frozen read-out).
"""

from __future__ import annotations

from pathlib import Path

from train.data import DataError


def backbone_layers(model) -> list:
    """The layers from the input up to and including ``features`` that carry weights."""
    from train.model import FEATURES_LAYER

    chosen = []
    for layer in model.layers:
        if layer.weights:
            chosen.append(layer)
        if layer.name == FEATURES_LAYER:
            return chosen
    raise DataError(f"model {model.name} has no {FEATURES_LAYER!r} layer: not a pneumoscan backbone")


def warm_start(model, checkpoint: str | Path) -> list[str]:
    """Copy the backbone weights of the Keras ``checkpoint`` file into ``model``; returns the
    names of the layers copied. (``fit`` finds a run folder's checkpoint for ``--init-from``.)"""
    import keras

    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(f"--init-from: no checkpoint at {path}")
    donor = keras.models.load_model(path, compile=False)
    donors = {layer.name: layer for layer in donor.layers}
    copied = []
    for layer in backbone_layers(model):
        match = donors.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        if match is None or [tuple(w.shape) for w in match.get_weights()] != shapes:
            raise DataError(
                f"--init-from {path}: its layer {layer.name!r} is missing or has other shapes "
                f"(the two runs need the same --filters)"
            )
        layer.set_weights(match.get_weights())
        copied.append(layer.name)
    return copied
