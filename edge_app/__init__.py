"""pneumoscan on the clinic device: offline chest X-ray screening with a TFLite model.

Nothing in this package imports TensorFlow, ``train`` or ``export``: the device has none of them.
The arrows point the other way: training and export import :mod:`edge_app.preprocessing` and
:mod:`edge_app.contract` so that the device sees exactly what training saw.
"""


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs ~30 ms of every `pneumoscan` cold start.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("pneumoscan")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+source"
    globals()["__version__"] = value
    return value
