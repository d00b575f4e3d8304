"""From a trained run to a clinic device: ``pneumoscan-export tflite RUN``.

One module per concern, each reachable in two hops from :mod:`export.cli`:

- :mod:`export.run` finds and checks the run folder (checkpoint, config, metrics, split);
- :mod:`export.calibration` picks the representative images, through the device's preprocessing;
- :mod:`export.graph` adds the on-device heatmap output to the Keras network;
- :mod:`export.tflite` converts (int8 / float16 / dynamic / none) and orchestrates one export;
- :mod:`export.parity` proves the file scores like the checkpoint, through the device's runtime;
- :mod:`export.metadata` builds the contract the file carries;
- :mod:`export.wrapper` logs time, path and size of every export.

The arrows point down: export imports ``train`` and ``edge_app``, never the other way round.
TensorFlow is imported inside the functions that need it, so ``--help`` stays instant.
"""
