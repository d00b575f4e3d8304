"""``pneumoscan``: the command a clinic runs. Thin commands over the library modules.

- ``predict``  -> :mod:`edge_app.paths`, :mod:`edge_app.screening` (:mod:`edge_app.decoding`,
  :mod:`edge_app.gate`, :mod:`edge_app.heatmap`), :mod:`edge_app.formatting`
- ``info``     -> :mod:`edge_app.model_file`, :mod:`edge_app.classifier`
- ``bench``    -> :mod:`edge_app.bench`
- ``watch``, ``history`` -> :mod:`edge_app.watch_cli` (registered on this app below)
- ``calibrate`` -> :mod:`edge_app.calibrate_cli` (registered on this app below)
- ``dicom-node`` -> :mod:`edge_app.dicom_node.cli` (the ``[dicom-node]`` extra; registered below)
- ``serve``    -> :mod:`edge_app.serve.cli` (the ``[serve]`` extra: the clinic's web page)
- options, errors, exit codes and model loading every command shares -> :mod:`edge_app.cli_common`

Exit codes: 0 every input was screened, 1 some input could not be (the others still were),
2 the command cannot run at all (bad option, unusable model, output file exists). Results go to
stdout or ``--output``; progress and warnings go to stderr, so ``> results.csv`` stays clean.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_app import calibrate_cli, watch_cli
from edge_app.dicom_node import cli as dicom_node_cli
from edge_app.serve import cli as serve_cli
from edge_app.cli_common import (
    EXIT_FAILED_INPUTS,
    EXIT_OK,  # noqa: F401 (the exit codes are documented here too)
    EXIT_USAGE,  # noqa: F401
    ModelOption,
    NoGateOption,
    NoSiteOption,
    SiteOption,
    ThreadsOption,
    fail,
    heatmap_option,
    load_model,
    make_screener,
    resolve_point,
    say,
    threshold_callback,
    warn,
    with_ids_option,
)

#: Show a progress bar for batches larger than this (and only when stderr is a terminal).
PROGRESS_MIN_IMAGES = 5

#: Sample films installed with the package (see ``samples/ATTRIBUTION.md``), for ``--samples``.
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"

app = typer.Typer(
    name="pneumoscan",
    help="Offline pneumonia screening aid for pediatric chest X-rays. Not a diagnosis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _show_version(value: bool) -> None:
    if value:
        from edge_app import __version__

        typer.echo(f"pneumoscan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Offline pneumonia screening aid for pediatric chest X-rays. Not a diagnosis."""


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def _want_progress(count: int) -> bool:
    # A bar only helps a person watching; in a log file it is noise.
    return count > PROGRESS_MIN_IMAGES and sys.stderr.isatty()


def _short(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it (a source checkout), else
    as it is: the samples' rows stay readable in the README's first command."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def _check_output(output: Path, force: bool, inputs: list[str]) -> None:
    """Refuse, before any work, an output that would overwrite or add to something the user
    gave: an input file (by real path or as a hard link), or anything in or below an input
    folder, ``--force`` or not (:func:`edge_app.paths.writes_into_inputs`)."""
    from edge_app.paths import writes_into_inputs

    if output.is_dir():
        raise fail(f"--output {output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise fail(f"--output {output}: folder {output.parent} does not exist")
    reason = writes_into_inputs(output, inputs)
    if reason is not None:
        raise fail(f"--output {output} {reason}; refusing to write there")
    if (output.exists() or output.is_symlink()) and not force:
        raise fail(f"--output {output} already exists; refusing to overwrite it (use --force)")


class _Sink:
    """Where results go, line by line: stdout, or ``--output`` opened once (exclusively unless
    ``--force``) and flushed after every line, so a kill or a full disk loses at most the line
    being written. ``json`` (one document) goes to ``--output`` whole: a temporary file in the
    same folder, then a rename, so a crash never leaves half a JSON file."""

    def __init__(self, output: Optional[Path], force: bool, whole: bool):
        self.output, self.force, self.whole = output, force, whole
        self.handle = None
        if output is not None and not whole:
            try:
                self.handle = open(output, "w" if force else "x", encoding="utf-8", newline="")
            except FileExistsError:
                raise fail(f"--output {output} already exists; refusing to overwrite it (use --force)") from None
            except OSError as exc:
                raise fail(f"cannot write --output {output}: {exc.strerror or exc}") from None

    def write(self, text: str) -> None:
        try:
            if self.output is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            elif self.whole:
                _write_output(self.output, text, self.force)
            else:
                self.handle.write(text)
                self.handle.flush()
        except OSError as exc:
            if self.handle is not None:
                try:  # drop what could not be written; the file keeps every complete line
                    self.handle.close()
                except OSError:
                    pass
                self.handle = None
            where = "stdout" if self.output is None else f"--output {self.output}"
            raise fail(f"cannot write results to {where}: {exc.strerror or exc}; "
                       "the results written before this one are complete") from None

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.handle.close()
            except OSError as exc:
                raise fail(f"cannot write --output {self.output}: {exc.strerror or exc}") from None


def _write_output(output: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``output`` whole: a temporary file in the same folder, then a rename,
    so a crash never leaves half a results file; without ``force`` an existing file wins."""
    from edge_app.paths import write_text_atomically

    try:
        write_text_atomically(output, text, replace=force, newline="")
    except FileExistsError:
        raise fail(f"--output {output} already exists; refusing to overwrite it (use --force)") from None


@app.command()
def predict(
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Image files (.jpg/.jpeg/.png, DICOM) or folders, searched recursively "
            "(DICOM found by content too).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold",
            callback=threshold_callback,
            help="Decision threshold on P(pneumonia) for this run. Default: the site profile's, else the model's validated one.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write results to this file instead of stdout.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Allow --output to replace an existing file.")] = False,
    threads: ThreadsOption = 1,
    heatmap: Annotated[
        Optional[Path],
        heatmap_option(
            "Write a PNG per image showing where the model looked into this folder "
            "(created if needed; not an input folder). Never replaces a file."
        ),
    ] = None,
    no_gate: NoGateOption = False,
    with_ids: Annotated[
        bool, with_ids_option("Include DICOM patient name, ID and birth date in the results.")
    ] = False,
    samples: Annotated[
        bool,
        typer.Option("--samples", help="Also screen the sample X-rays installed with pneumoscan (a first try)."),
    ] = False,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
) -> None:
    """Screen chest X-ray images and report P(pneumonia), a 0-100 score and a label for each."""
    from edge_app.formatting import ResultStream, result_columns
    from edge_app.paths import expand_paths
    from edge_app.preprocessing import is_image_name

    paths = list(paths or [])
    if samples:
        paths += [_short(p) for p in sorted(SAMPLES_DIR.glob("*.jpeg"))]
    if not paths:
        raise fail("give at least one PATH to screen (or --samples for the bundled sample X-rays)")

    if output is not None:
        _check_output(output, force, paths)
    classifier = load_model(model, threads)
    contract = classifier.contract
    point, _ = resolve_point(contract, site, no_site)
    if threshold is not None and threshold != point.threshold:
        chosen = "site profile's" if point.source == "site" else "model's validated"
        warn(f"using threshold {threshold:g} instead of the {chosen} {point.threshold:g}")
        point = point.with_threshold(threshold)

    warnings_seen: list[str] = []
    screener = make_screener(
        classifier,
        point=point,
        on_warning=lambda p, m: warnings_seen.append(f"{p}: {m}"),
        no_gate=no_gate,
        with_ids=with_ids,
        heatmap=heatmap,
        inputs=paths,
    )
    items = expand_paths(paths)
    sink = _Sink(output, force, whole=fmt is OutputFormat.json)
    columns = result_columns(
        dicom=any(not is_image_name(item.source) for item in items), with_ids=with_ids, heatmap=heatmap is not None,
        pattern=contract.pattern is not None,
    )
    stream = ResultStream(
        fmt.value, sink.write, paths=[item.path for item in items], columns=columns,
        positive_label=contract.positive_label, pattern_display=contract.pattern.display if contract.pattern else None,
    )
    results = screener.screen_all(items)
    # A bar only when the results themselves are not scrolling past on the same terminal.
    if _want_progress(len(items)) and (output is not None or not sys.stdout.isatty()):
        with typer.progressbar(results, length=len(items), label="Screening", show_pos=True, file=sys.stderr) as bar:
            for result in bar:
                stream.add(result)
    else:
        for result in results:
            stream.add(result)
    stream.finish()
    sink.close()
    results = stream.results

    for message in warnings_seen:
        warn(message)
    failed = [r for r in results if not r.ok]
    if output is not None:
        say(f"Wrote {len(results)} results to {output}.")
    if failed:
        if fmt is not OutputFormat.table or output is not None:
            for r in failed:  # the table shows them already; other formats are read by programs
                say(f"{r.path}: {r.error}")
        warn(f"{len(failed)} of {len(results)} inputs could not be screened")
        raise typer.Exit(EXIT_FAILED_INPUTS)


@app.command()
def info(
    model: ModelOption = None,
    fmt: Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format.")] = TableOrJson.table,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
) -> None:
    """Show the model's metadata, the runtime and the active site profile.

    The metadata: labels, input, threshold, version, validation metrics. The site profile is the
    threshold predict and watch would use.
    """
    from edge_app.formatting import flatten
    from edge_app.site_profile import describe_active

    classifier = load_model(model, 1)
    details = {
        "model_path": str(classifier.model_path),
        "model_size_bytes": classifier.model_path.stat().st_size,
        "runtime": classifier.runtime,
        "input": classifier.input_details,
        "output": classifier.output_details,
        "site_profile": describe_active(classifier.contract, site, disabled=no_site),
        "metadata": classifier.contract.raw,
    }
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(details, indent=2, sort_keys=True))
        return
    rows = [
        (name, json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value))
        for part, prefix in (({k: v for k, v in details.items() if k != "metadata"}, ""), (details["metadata"], "metadata."))
        for name, value in flatten(part, prefix, sort_keys=True).items()
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


@app.command()
def bench(
    image: Annotated[
        Optional[Path],
        typer.Argument(help="Image to time (default: a synthetic 1400x1100 film).", show_default=False),
    ] = None,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, max=100_000, help="Timed runs after warm-up.")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", min=0, max=1000, help="Untimed warm-up runs.")] = 5,
    fmt: Annotated[TableOrJson, typer.Option("--format", "-f", help="Output format.")] = TableOrJson.table,
) -> None:
    """Time preprocessing and inference (median, p95) and report peak memory."""
    from edge_app.bench import run_bench
    from edge_app.preprocessing import ImageError

    classifier = load_model(model, threads)
    try:
        report = run_bench(classifier, image, runs=runs, warmup=warmup)
    except ImageError as exc:
        raise fail(f"{image}: {exc}") from None
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo("\n".join(report.lines()))


# Registered here, after predict, info and bench, so ``--help`` lists the commands in that order.
app.command()(watch_cli.watch)
app.command()(watch_cli.history)
app.command()(calibrate_cli.calibrate)
app.command("dicom-node")(dicom_node_cli.dicom_node)
app.command()(serve_cli.serve)


def main() -> None:
    """Console-script entry point (``pneumoscan``)."""
    app()


if __name__ == "__main__":
    main()
