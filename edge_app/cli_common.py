"""What every ``pneumoscan`` command shares, declared once: options, errors, exit codes, the model.

The same flag must mean the same thing wherever it appears, so its name, short form, range and
metavar live here. Where the help has to say something command-specific (``predict`` writes
results, ``watch`` records them in the log), the command passes its own help text to a factory.
:mod:`edge_app.cli` (the app, ``predict``/``info``/``bench``) and :mod:`edge_app.watch_cli`
(``watch``/``history``) both import this module and never each other's commands' helpers.

Exit codes: 0 every input was screened, 1 some input could not be (the others still were),
2 the command cannot run at all (bad option, unusable model, output file exists).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edge_app.contract import ContractError, check_threshold
from edge_app.runtime import RuntimeUnavailable

if TYPE_CHECKING:  # imported when a command needs them: ``--help`` and ``--version`` stay fast
    from edge_app.classifier import Classifier
    from edge_app.screening import Screener

EXIT_OK, EXIT_FAILED_INPUTS, EXIT_USAGE = 0, 1, 2

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


def db_option(help: str):
    """``--db FILE`` (also ``$PNEUMOSCAN_DB``); ``help`` says which default the command uses."""
    return typer.Option("--db", envvar="PNEUMOSCAN_DB", help=help, show_default=False)


SiteOption = Annotated[
    Optional[Path],
    typer.Option(
        "--site",
        help="Site profile (site.json from pneumoscan calibrate): the site's own threshold and band. "
        "Default: $PNEUMOSCAN_SITE, else ~/.config/pneumoscan/site.json if it exists.",
        show_default=False,
    ),
]
NoSiteOption = Annotated[
    bool, typer.Option("--no-site", help="Ignore any site profile: decide at the model's own threshold.")
]


def threshold_callback(value: Optional[float]) -> Optional[float]:
    """``--threshold``: refuse a value outside (0, 1) as a usage error, before any work."""
    if value is None:
        return None
    try:
        return check_threshold(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def say(message: str) -> None:
    """Print ``message`` to stderr as one line, escaped (:func:`edge_app.formatting.printable`):
    it may quote a file name, which must not move the cursor or forge a line."""
    from edge_app.formatting import printable

    typer.echo(printable(message), err=True)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``pneumoscan: error: message`` (one line) to stderr; raise the returned Exit."""
    say(f"pneumoscan: error: {message}")
    return typer.Exit(code)


def warn(message: str) -> None:
    say(f"pneumoscan: warning: {message}")


def load_model(model: Optional[Path], threads: int) -> Classifier:
    """The classifier for ``--model``/``--threads``; exit 2 with the reason if it cannot be used."""
    from edge_app.model_file import load_classifier

    try:
        return load_classifier(model, threads=threads)
    except (ContractError, RuntimeUnavailable) as exc:
        raise fail(str(exc)) from None


def make_screener(
    classifier: Classifier,
    *,
    threshold: Optional[float] = None,
    on_warning: Callable[[str, str], None],
    no_gate: bool,
    with_ids: bool,
    heatmap: Optional[Path],
    inputs: list[str],
    absolute_heatmap_paths: bool = False,
    point=None,
) -> Screener:
    """The :class:`~edge_app.screening.Screener` for ``--no-gate``, ``--with-ids`` and
    ``--heatmap``; exit 2 with the reason if one of them cannot be used with this model.

    The heatmap folder is checked against ``inputs`` and created only once everything else is
    known to work. ``absolute_heatmap_paths``: record each heatmap's full path (the audit log).
    ``point``: the operating point to decide with (:func:`resolve_point`; default the model's).
    """
    from edge_app.gate import GateUnavailable
    from edge_app.heatmap import HeatmapError, HeatmapWriter, check_folder
    from edge_app.screening import Screener

    if no_gate:
        warn("input gate off: images that are not chest X-rays will be scored too")
    writer = None
    if heatmap is not None:
        writer = HeatmapWriter(heatmap.absolute() if absolute_heatmap_paths else heatmap)
    try:
        screener = Screener(
            classifier, threshold, on_warning=on_warning, gate=not no_gate, with_ids=with_ids, heatmaps=writer,
            point=point,
        )
        if heatmap is not None:
            check_folder(heatmap, inputs)
    except GateUnavailable as exc:
        raise fail(f"{exc}, or pass --no-gate to screen without the input gate") from None
    except (ContractError, HeatmapError) as exc:
        raise fail(str(exc)) from None
    return screener


def resolve_point(contract, site: Optional[Path], no_site: bool):
    """The :class:`~edge_app.operating_point.OperatingPoint` a command decides with (the site
    profile's, else the model's own) and the profile it came from, if any; exit 2 with one line
    for a profile that is missing, malformed or made for another model."""
    from edge_app.site_profile import SiteProfileError, operating_point, resolve_site

    try:
        profile = resolve_site(site, disabled=no_site)
        return operating_point(contract, profile), profile
    except SiteProfileError as exc:
        raise fail(str(exc)) from None
