"""Which model file the device uses: ``--model``, else ``$PNEUMOSCAN_MODEL``, else the shipped one."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edge_app.classifier import Classifier
from edge_app.contract import ContractError

#: The model installed with the package (package data, see pyproject.toml).
DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "pneumoscan-int8.tflite"

ENV_VAR = "PNEUMOSCAN_MODEL"

#: Lines the native runtime prints on every start that tell a clinic nothing.
NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


def resolve_model_path(explicit: str | os.PathLike | None = None) -> Path:
    """The model path to use, or :class:`ContractError` saying how to get one."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    if not DEFAULT_MODEL.is_file():
        raise ContractError(
            f"no model: this installation does not ship {DEFAULT_MODEL.name} "
            f"(looked in {DEFAULT_MODEL.parent}). Pass --model FILE or set {ENV_VAR}=FILE "
            "with a model made by `pneumoscan-export tflite RUN`, or install a pneumoscan "
            "release that includes the trained model"
        )
    return DEFAULT_MODEL


def load_classifier(model: str | os.PathLike | None = None, threads: int = 1) -> Classifier:
    """Load the model to use (see :func:`resolve_model_path`); raises ``ContractError`` or
    ``RuntimeUnavailable`` with a one-line reason if it cannot be used."""
    path = resolve_model_path(model)
    with _filtered_native_stderr():
        return Classifier(path, threads=threads)


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Drop the runtime's start-up INFO line, which C++ writes straight to file descriptor 2;
    anything else it writes (a real warning) is passed on to ``sys.stderr``. If loading fails,
    what it wrote is dropped: the exception carries the reason, and the user gets one line."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        capture = tempfile.TemporaryFile(mode="w+b")
    except (OSError, ValueError):  # no usable fd 2 (a daemon, an embedded interpreter)
        yield
        return
    failed = True
    try:
        os.dup2(capture.fileno(), 2)
        yield
        failed = False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        capture.close()
        kept = [line for line in text.splitlines() if line.strip() and line.strip() not in NATIVE_NOISE]
        if kept and not failed:
            sys.stderr.write("\n".join(kept) + "\n")
