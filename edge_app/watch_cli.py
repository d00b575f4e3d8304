"""The ``watch`` and ``history`` commands; :mod:`edge_app.cli` registers them on the ``pneumoscan`` app.

- ``watch``    -> :mod:`edge_app.watch` (the loop), :mod:`edge_app.audit_log` (the record),
  :mod:`edge_app.screening` (scoring one image, exactly as ``predict`` does)
- ``history``  -> :mod:`edge_app.audit_log` (the entries), :mod:`edge_app.formatting` (the same
  layout ``predict`` writes); ``history --by-day`` -> :mod:`edge_app.drift` (the days against
  the site profile's calibration, :mod:`edge_app.site_profile`)

Exit codes follow ``pneumoscan``'s: 0 done, 1 some image in this run could not be screened (it is
recorded with its reason), 2 the command cannot run (bad option, model or database).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_app.cli_common import (
    EXIT_FAILED_INPUTS,
    ModelOption,
    NoGateOption,
    NoSiteOption,
    SiteOption,
    ThreadsOption,
    db_option,
    fail,
    say,
    heatmap_option,
    load_model,
    make_screener,
    resolve_point,
    with_ids_option,
)


class HistoryFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def parse_since(text: str) -> datetime:
    """``--since``: ``today``, ``yesterday``, ``2024-05-01`` or ``2024-05-01T08:00`` (local time
    unless an offset is given) as an aware datetime; ``ValueError`` with a usable message otherwise."""
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        day = date.today() - timedelta(days=word == "yesterday")
        return datetime.combine(day, time()).astimezone()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM, today or yesterday"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _say(message: str) -> None:
    say(f"pneumoscan: {message}")


def watch(
    inbox: Annotated[
        Path,
        typer.Argument(help="Folder the X-ray unit or staff drop images into (searched recursively).", show_default=False),
    ],
    db: Annotated[
        Optional[Path],
        db_option("Audit log (SQLite). Default: $PNEUMOSCAN_DB, else pneumoscan.sqlite beside INBOX (INBOX/../pneumoscan.sqlite)."),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, max=3600, help="Seconds between looks at INBOX.")
    ] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="Screen what is in INBOX now, then exit (for cron and tests).")
    ] = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Try images that failed before once more.")
    ] = False,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
    heatmap: Annotated[
        Optional[Path],
        heatmap_option(
            "Write a PNG per image showing where the model looked into this folder "
            "(created if needed; not inside INBOX); its path is recorded with the result."
        ),
    ] = None,
    no_gate: NoGateOption = False,
    with_ids: Annotated[bool, with_ids_option("Record DICOM patient name, ID and birth date in the log.")] = False,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
) -> None:
    """Screen every new image in INBOX once and record it in the audit log; runs until stopped.

    An image is identified by its content (SHA-256), so a renamed or copied file is not screened
    again, and it is screened once per model version. Files are only read, never moved or
    changed. Ctrl-C or SIGTERM finish the current image and exit.
    """
    from edge_app.audit_log import AuditLog, AuditLogError
    from edge_app.watch import Watcher, default_db_path, stop_on_signals

    if not inbox.is_dir():
        raise fail(f"inbox {inbox} is not a folder" if inbox.exists() else f"inbox {inbox} does not exist")
    db_path = db or default_db_path(inbox)
    from edge_app.paths import writes_into_inputs

    reason = writes_into_inputs(db_path, [str(inbox)])
    if reason is not None:  # the log would be walked as input, and its journal files too
        raise fail(f"--db {db_path} {reason}; keep the log outside the inbox")
    classifier = load_model(model, threads)
    point, _ = resolve_point(classifier.contract, site, no_site)

    def report(event: str, path: str, detail: str) -> None:
        from edge_app.formatting import printable

        stamp = datetime.now().isoformat(timespec="seconds")
        typer.echo(printable(f"{stamp}  {event:<8} {path}  {detail}"), err=event == "warning")

    screener = make_screener(
        classifier,
        point=point,
        on_warning=lambda path, message: report("warning", path, message),
        no_gate=no_gate,
        with_ids=with_ids,
        heatmap=heatmap,
        inputs=[str(inbox)],
        absolute_heatmap_paths=True,  # the log keeps full paths
    )
    try:
        log = AuditLog(db_path)
    except AuditLogError as exc:
        raise fail(str(exc)) from None
    version = classifier.contract.version
    with log:
        watcher = Watcher(inbox, log, screener.screen, version, retry_errors=retry_errors, report=report)
        rule = f"site profile {point.profile}" if point.source == "site" else "the model's"
        _say(
            f"watching {inbox} with model {version}, threshold {point.threshold:g} ({rule}); "
            f"results in {db_path}" + ("" if once else "; Ctrl-C stops")
        )
        with stop_on_signals(watcher, lambda name: _say(f"{name}: finishing the current image, then stopping")):
            try:
                stats = watcher.run(interval=interval, once=once)
            except AuditLogError as exc:
                raise fail(str(exc)) from None
            except KeyboardInterrupt:
                _say("stopped before the current image was finished; it is screened at the next start")
                raise typer.Exit(EXIT_FAILED_INPUTS) from None
    waiting = f", {len(stats.waiting)} still being written" if stats.waiting else ""
    _say(f"{stats.scored} screened, {stats.failed} could not be screened, {stats.skipped} already in the log{waiting}")
    if stats.failed and once:
        raise typer.Exit(EXIT_FAILED_INPUTS)


def history(
    db: Annotated[
        Optional[Path],
        db_option("Audit log to read. Default: $PNEUMOSCAN_DB, else ./pneumoscan.sqlite."),
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option("--since", help="Only results from this local date/time on: YYYY-MM-DD[THH:MM], today, yesterday.", show_default=False),
    ] = None,
    fmt: Annotated[HistoryFormat, typer.Option("--format", "-f", help="Output format.")] = HistoryFormat.table,
    by_day: Annotated[
        bool,
        typer.Option(
            "--by-day",
            help="One row per day: images, refused, share referred and uncertain, median score, and "
            "days whose share referred leaves the range the site calibration expects (drift).",
        ),
    ] = False,
    model: ModelOption = None,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
) -> None:
    """Export the audit log, newest first, one row per image and model version.

    With --by-day, a day-by-day summary against the site calibration, for a supervisor.

    --model, --site and --no-site matter only for --by-day: it counts the results of that model
    at that threshold.
    """
    from edge_app.audit_log import AuditLog, AuditLogError
    from edge_app.formatting import render_log
    from edge_app.watch import DB_NAME

    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    if by_day:
        _history_by_day(db or Path(DB_NAME), start, fmt.value, model, site, no_site)
        return
    try:
        with AuditLog(db or Path(DB_NAME), readonly=True) as log:
            entries = log.entries(start)
    except AuditLogError as exc:
        raise fail(str(exc)) from None
    typer.echo(render_log(entries, fmt.value), nl=False)


def _history_by_day(db: Path, start, fmt: str, model, site, no_site: bool) -> None:
    """``history --by-day``: the model's contract (read, not loaded), the site profile, the rows."""
    from edge_app.audit_log import AuditLog, AuditLogError
    from edge_app.contract import ContractError, read_contract
    from edge_app.drift import render, summarise_by_day
    from edge_app.model_file import resolve_model_path

    try:
        contract = read_contract(resolve_model_path(model))
    except ContractError as exc:
        raise fail(str(exc)) from None
    point, profile = resolve_point(contract, site, no_site)
    try:
        with AuditLog(db, readonly=True) as log:
            rows = log.rows(start)
    except AuditLogError as exc:
        raise fail(str(exc)) from None
    expected = None if profile is None else profile.expected_share_referred
    report = summarise_by_day(rows, point, contract.version, expected)
    typer.echo(render(report, fmt), nl=False)
