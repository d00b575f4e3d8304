"""pneumoscan on the clinic device: offline chest X-ray screening with a TFLite model.

Nothing in this package imports TensorFlow, ``train`` or ``export``: the device has none of them.
The arrows point the other way: training and export import :mod:`edge_app.preprocessing` and
:mod:`edge_app.contract` so that the device sees exactly what training saw.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pneumoscan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
