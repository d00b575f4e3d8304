"""``pneumoscan-export``: turn a training run into a model file a clinic device can trust."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from export.calibration import CALIBRATION_IMAGES
from export.errors import ExportError, ParityError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


class Quantize(str, Enum):
    int8 = "int8"
    float16 = "float16"
    dynamic = "dynamic"
    none = "none"


@app.callback()
def _root() -> None:
    """Keep ``tflite`` a sub-command (more formats can join it)."""


@app.command("tflite")
def tflite_command(
    run_or_model: Path = typer.Argument(..., help="A run folder from pneumoscan-train fit, or its model.keras"),
    quantize: Quantize = typer.Option(Quantize.int8, "--quantize", help="int8 (device default), float16, dynamic or none"),
    calibration: Optional[Path] = typer.Option(
        None, "--calibration", help="Labelled folder to calibrate int8 on instead of the run's training split"
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default RUN/model-<int8|fp16|dynamic|fp32>.tflite)"),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Refuse a file that fails parity with the checkpoint"),
    threads: int = typer.Option(1, "--threads", min=1, help="Also time inference at this many threads (parity always runs at 1)"),
    calibration_images: int = typer.Option(
        CALIBRATION_IMAGES, "--calibration-images", min=1, help="Representative images for int8 (warns below 100)"
    ),
    keep_run_threshold: bool = typer.Option(
        False, "--keep-run-threshold",
        help="Ship the Keras checkpoint's threshold instead of the run's rule applied to this file's own scores",
    ),
) -> None:
    """Convert to TFLite, prove parity on the validation split, write FILE and FILE.json."""
    # Before TensorFlow is imported: keep its C++ start-up chatter out of a clinic engineer's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export.exporter import export_tflite

    try:
        result = export_tflite(
            run_or_model,
            quantize=quantize.value,
            calibration=calibration,
            out=out,
            force=force,
            verify=verify,
            threads=threads,
            calibration_images=calibration_images,
            keep_run_threshold=keep_run_threshold,
            log=typer.echo,
        )
    except ParityError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    except (ExportError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(str(result.path))


@app.command("seal")
def seal_command(
    files: list[Path] = typer.Argument(..., help="Model files (.tflite with pneumoscan metadata) to re-seal in place"),
) -> None:
    """Write a fresh integrity seal into FILE (flatbuffer and contract unchanged), and FILE.json.

    The device refuses a model whose seal is missing or wrong. Seal only a file you trust: a
    model exported before sealing existed, or one whose contract you edited on purpose.
    """
    from edge_app.contract import ContractError, seal_model

    failed = False
    for path in files:
        try:
            digest = seal_model(path)
        except (ContractError, OSError) as exc:
            typer.echo(f"error: {path}: {exc}", err=True)
            failed = True
            continue
        typer.echo(f"{path}: sealed, sha256 {digest}")
    if failed:
        raise typer.Exit(2)


def main() -> None:
    app()
