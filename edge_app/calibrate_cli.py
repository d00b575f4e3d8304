"""``pneumoscan calibrate``: a site sets its own threshold on its own labelled films.

- reading the films      -> :mod:`edge_app.labelled_set`
- screening them         -> :mod:`edge_app.screening` (exactly as ``predict``: the input gate applies)
- the table and the rule -> :mod:`edge_app.calibration`
- ``site.json``          -> :mod:`edge_app.site_profile`; plots -> :mod:`edge_app.calibration_plots`

Exit codes follow ``pneumoscan``'s: 0 a profile was written, 2 nothing was written (bad labelled
set, a class left without films after refusals, an existing ``--out`` without ``--force``,
unusable model). Refused films are listed on stderr and left out of every figure.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edge_app.cli_common import ModelOption, ThreadsOption, fail, load_model, make_screener, warn


class ReportFormat(str, Enum):
    table = "table"
    json = "json"


def _check_sensitivity(value: float) -> float:
    if not 0.5 <= value < 1.0:
        raise typer.BadParameter(f"{value:g} is not in [0.5, 1)")
    return value


def calibrate(
    labelled: Annotated[
        Path,
        typer.Argument(
            help="Labelled films: a folder with NORMAL/ and PNEUMONIA/ sub-folders, or a CSV of path,label.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Site profile to write (e.g. site.json).", show_default=False)
    ],
    sensitivity: Annotated[
        float,
        typer.Option(
            "--sensitivity",
            callback=_check_sensitivity,
            help="Recommend the threshold with the highest specificity whose sensitivity stays at or above this.",
        ),
    ] = 0.95,
    confident: Annotated[
        bool,
        typer.Option(
            "--confident",
            help="Hold the sensitivity's 95% interval, not just its observed value, to --sensitivity "
            "(refers more healthy children; safer on a few hundred films).",
        ),
    ] = False,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
    force: Annotated[bool, typer.Option("--force", help="Allow --out (and its plots) to replace existing files.")] = False,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format on stdout.")] = ReportFormat.table,
) -> None:
    """Screen a site's labelled films and write a site profile with its own threshold.

    Prints sensitivity, specificity, PPV, NPV and the share referred at candidate thresholds
    (each with a 95% interval) and the AUC, recommends a threshold, and writes OUT plus ROC and
    threshold plots beside it. predict, watch and history use the profile with --site OUT.
    """
    from edge_app.calibration import calibrate as run_calibration
    from edge_app.calibration import format_table, screen_labelled
    from edge_app.calibration_plots import PlotsUnavailable, plot_paths, write_plots
    from edge_app.labelled_set import LabelledSetError, read_labelled
    from edge_app.site_profile import SiteProfileError, build_profile, write_profile

    # Everything that would stop the run is checked before the first film is screened.
    if out.is_dir():
        raise fail(f"--out {out} is a folder; give a file name such as {out / 'site.json'}")
    if not out.parent.is_dir():
        raise fail(f"--out {out}: folder {out.parent} does not exist")
    if not force:
        for path in (out, *plot_paths(out)):
            if path.exists() or path.is_symlink():
                raise fail(f"{path} already exists; refusing to overwrite it (use --force)")
    classifier = load_model(model, threads)
    contract = classifier.contract
    try:
        films = read_labelled(labelled, contract.labels)
    except LabelledSetError as exc:
        raise fail(str(exc)) from None
    for note in films.notes:
        warn(note)

    screener = make_screener(
        classifier, on_warning=lambda p, m: warn(f"{p}: {m}"), no_gate=False, with_ids=False,
        heatmap=None, inputs=[str(labelled)],
    )
    counts = ", ".join(f"{n} {label}" for label, n in films.counts.items())
    typer.echo(f"pneumoscan: screening {len(films.films)} labelled films ({counts}) with model {contract.version}", err=True)
    if sys.stderr.isatty():
        with typer.progressbar(length=len(films.films), label="Screening", file=sys.stderr) as bar:
            def screen(path: str):
                bar.update(1)
                return screener.screen(path)
            screened = screen_labelled(films, screen)
    else:
        screened = screen_labelled(films, screener.screen)

    for path, reason in screened.refused:
        typer.echo(f"left out: {path}: {reason}", err=True)
    if screened.refused:
        warn(f"{len(screened.refused)} of {len(films.films)} films could not be screened and are left out")
    negative, positive = contract.labels
    for name, present in ((negative, (~screened.labels).any()), (positive, screened.labels.any())):
        if not present:
            raise fail(f"{labelled}: no {name} film could be screened; no profile written")

    calibration = run_calibration(
        screened.labels, screened.scores, model_threshold=contract.threshold, target=sensitivity,
        class_names=contract.labels, confident=confident,
    )
    data = build_profile(calibration, contract, labelled=films.source, refused=len(screened.refused))
    try:
        profile = write_profile(data, out, force=force)
    except SiteProfileError as exc:
        raise fail(str(exc)) from None
    for message in calibration.warnings:
        warn(message)

    if fmt is ReportFormat.json:
        typer.echo(json.dumps({**data, "site_profile": profile.hash, "path": str(out)}, indent=2))
    else:
        typer.echo(_report(calibration, format_table(calibration), out, profile.hash), nl=False)
    try:
        for path in write_plots(screened.labels, screened.scores, calibration, out, force=force):
            typer.echo(f"pneumoscan: wrote {path}", err=True)
    except PlotsUnavailable as exc:
        typer.echo(f"pneumoscan: {exc}", err=True)
    except (FileExistsError, OSError) as exc:
        warn(f"plots not written: {exc}")


def _report(calibration, table: str, out: Path, digest: str) -> str:
    """The table, then the recommendation against the model's own threshold in plain words."""
    site, model = calibration.recommended, calibration.at_model_threshold

    def figures(row) -> str:
        return (
            f"sensitivity {row.sensitivity.value:.3f}, specificity {row.specificity.value:.3f}, "
            f"referred {row.referred.value:.1%}"
        )

    band = "none" if calibration.band is None else f"{calibration.band[0]:.4f}-{calibration.band[1]:.4f}"
    lines = [
        table.rstrip("\n"),
        "",
        f"Rule: {calibration.rule}.",
        f"Model threshold {model.threshold:.4f}: {figures(model)}.",
        f"Site threshold  {site.threshold:.4f}: {figures(site)}; uncertain band {band}.",
        f"Wrote {out} (profile {digest}). Use it with --site {out}, or set PNEUMOSCAN_SITE.",
    ]
    return "\n".join(lines) + "\n"
