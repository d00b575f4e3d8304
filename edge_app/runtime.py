"""Which TFLite interpreter the device uses, in a fixed order of preference.

1. ``ai_edge_litert`` (LiteRT): the maintained runtime, works with numpy 2.
2. ``tflite_runtime``: older devices and images pinned to numpy 1.x.
3. ``tensorflow.lite``: only where TensorFlow happens to be installed (a workstation).

``PNEUMOSCAN_RUNTIME=litert|tflite_runtime|tensorflow`` forces one, so each can be tested.
"""

from __future__ import annotations

import importlib
import os

#: (name, module, attribute) in order of preference.
RUNTIMES = (
    ("litert", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter", "Interpreter"),
    # ``tf.lite.Interpreter`` lives here; ``importlib.import_module("tensorflow.lite")`` returns
    # the bare package, which has no ``Interpreter`` attribute.
    ("tensorflow", "tensorflow.lite.python.interpreter", "Interpreter"),
)

INSTALL_HINT = "install the edge extra: pip install 'pneumoscan[edge]'"


class RuntimeUnavailable(RuntimeError):
    """No TFLite interpreter could be imported."""


def find_interpreter(preferred: str | None = None):
    """Return ``(runtime name, Interpreter class)`` for the first runtime that imports."""
    preferred = preferred or os.environ.get("PNEUMOSCAN_RUNTIME") or None
    candidates = RUNTIMES
    if preferred:
        candidates = tuple(r for r in RUNTIMES if r[0] == preferred)
        if not candidates:
            names = ", ".join(r[0] for r in RUNTIMES)
            raise RuntimeUnavailable(f"unknown runtime {preferred!r}; one of {names}")
    failures = []
    for name, module_name, attribute in candidates:
        try:
            module = importlib.import_module(module_name)
            return name, getattr(module, attribute)
        except (ImportError, AttributeError) as exc:
            # AttributeError: a half-installed or incompatible build (e.g. a module without its
            # Interpreter); treat it like a missing runtime and try the next.
            failures.append(f"{name}: {exc}")
    raise RuntimeUnavailable(f"no TFLite runtime found ({'; '.join(failures)}); {INSTALL_HINT}")
