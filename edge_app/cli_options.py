"""Options that more than one ``pneumoscan`` command takes, declared once.

The same flag must mean the same thing wherever it appears, so its name, short form, range and
metavar live here. Where the help has to say something command-specific (``predict`` writes
results, ``watch`` records them in the log), the command passes its own help text to a factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ModelOption = Annotated[
    Optional[Path],
    typer.Option(
        "--model",
        "-m",
        help="Model file (.tflite with pneumoscan metadata). Default: $PNEUMOSCAN_MODEL, "
        "else the model installed with pneumoscan.",
        show_default=False,
    ),
]
ThreadsOption = Annotated[int, typer.Option("--threads", "-t", min=1, max=64, help="Interpreter threads.")]
NoGateOption = Annotated[
    bool,
    typer.Option("--no-gate", help="Screen every image, even ones that do not look like a chest X-ray."),
]


def heatmap_option(help: str):
    """``--heatmap DIR``; ``help`` says where the folder may not be and where its paths end up."""
    return typer.Option("--heatmap", help=help, metavar="DIR", show_default=False)


def with_ids_option(help: str):
    """``--with-ids``; ``help`` says where the identifiers go (results, or the log)."""
    return typer.Option("--with-ids", help=help)
