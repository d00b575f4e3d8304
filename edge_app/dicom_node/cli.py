"""The ``dicom-node`` command; :mod:`edge_app.cli` registers it on the ``pneumoscan`` app.

-> :mod:`edge_app.dicom_node.node` (receive, screen, forward), :mod:`edge_app.screening` (scoring
one film exactly as ``predict`` does), :mod:`edge_app.audit_log` (the record ``history`` shows).

Exit codes: 0 stopped by SIGINT/SIGTERM, 2 the node cannot run (option, model, database, port,
missing ``[dicom-node]`` extra) or had to stop (the audit log became unusable).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge_app.cli_common import (
    EXIT_USAGE,
    ModelOption,
    NoGateOption,
    NoSiteOption,
    SiteOption,
    ThreadsOption,
    db_option,
    fail,
    load_model,
    make_screener,
    resolve_point,
    with_ids_option,
)


def _check_installed() -> None:
    from edge_app.dicom_node import INSTALL_HINT

    try:
        import highdicom  # noqa: F401
        import pydicom  # noqa: F401
        import pynetdicom  # noqa: F401
    except ImportError:
        raise fail(INSTALL_HINT) from None


#: pynetdicom's errors for a destination that cannot be reached, on every retry: the forwarder
#: says it once per outage instead.
_FORWARDER_SAYS = ("Association request failed", "TCP Initialisation Error")


def _quiet_pynetdicom() -> None:
    """pynetdicom logs every association at INFO and dumps datasets at DEBUG (patient names
    included); the node reports what matters itself, so only pynetdicom's errors get through,
    as one line each and without tracebacks."""
    import logging

    class OneLine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage().strip().splitlines()
            if text and text[0].startswith(_FORWARDER_SAYS):
                return
            typer.echo(f"pneumoscan: pynetdicom: {text[0] if text else record.levelname}", err=True)

    logger = logging.getLogger("pynetdicom")
    logger.handlers[:] = [OneLine(level=logging.ERROR)]
    logger.setLevel(logging.ERROR)
    logger.propagate = False


def dicom_node(
    ae_title: Annotated[
        str, typer.Option("--ae-title", help="This node's AE title: the 'called AE' set on the X-ray unit.")
    ] = "PNEUMOSCAN",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port to listen on (0: any free port, printed at start).")
    ] = 11112,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on: 0.0.0.0 for every network the device is on. The default only accepts this machine."),
    ] = "127.0.0.1",
    data: Annotated[
        Path,
        typer.Option("--data", help="Folder for received films, heatmaps and the outbox (created if needed)."),
    ] = Path("pneumoscan-node"),
    db: Annotated[
        Optional[Path],
        db_option("Audit log (SQLite). Default: $PNEUMOSCAN_DB, else DATA/pneumoscan.sqlite."),
    ] = None,
    forward: Annotated[
        Optional[str],
        typer.Option("--forward", metavar="AE@HOST:PORT", help="Send each result (SR and heatmap image) to this DICOM node, e.g. the PACS.", show_default=False),
    ] = None,
    allow_ae: Annotated[
        Optional[list[str]],
        typer.Option("--allow-ae", metavar="AE", help="Accept associations only from this calling AE title (repeat for several).", show_default=False),
    ] = None,
    allow_peer: Annotated[
        Optional[list[str]],
        typer.Option("--allow-peer", metavar="ADDRESS", help="Accept connections only from this address or network, e.g. 192.168.1.0/24 (repeat for several).", show_default=False),
    ] = None,
    retry_max: Annotated[
        float, typer.Option("--forward-retry-max", min=0.1, max=3600, help="Longest pause, in seconds, between attempts to reach --forward.")
    ] = 60.0,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
    no_gate: NoGateOption = False,
    with_ids: Annotated[bool, with_ids_option("Record DICOM patient name, ID, birth date and accession number in the log.")] = False,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
) -> None:
    """Be a DICOM node: screen and record each film the X-ray unit sends; runs until stopped.

    Films arrive by C-STORE; each is screened once and recorded in the audit log, and with
    --forward the result is sent to the PACS.

    Every film is on disk under --data before the unit is told it was stored; after a crash or
    power cut, films received but not yet screened are screened at the next start.
    """
    _check_installed()
    _quiet_pynetdicom()
    from edge_app.audit_log import AuditLogError
    from edge_app.dicom_node.node import DB_NAME, HEATMAPS, DicomNode, NodeConfig, run_until_signalled
    from edge_app.dicom_node.outbox import Destination, check_ae_title
    from edge_app.dicom_node.scp import AccessPolicy
    from edge_app.dicom_node.storage import FILMS

    try:
        check_ae_title(ae_title)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ae-title") from None
    try:
        destination = Destination.parse(forward) if forward else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--forward") from None
    try:
        policy = AccessPolicy.parse(allow_ae or (), allow_peer or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if data.exists() and not data.is_dir():
        raise fail(f"--data {data} is a file; give a folder")
    try:
        data.mkdir(mode=0o750, parents=True, exist_ok=True)  # films carry patient details
        # The films folder exists before the heatmap folder is checked against it: the check
        # takes a path that is not a folder for a file and refuses its siblings.
        (data / FILMS).mkdir(mode=0o750, exist_ok=True)
    except OSError as exc:
        raise fail(f"--data {data}: cannot create the folder ({exc.strerror or exc})") from None
    data = data.absolute()

    lock = threading.Lock()

    def report(event: str, detail: str) -> None:
        stamp = datetime.now().isoformat(timespec="seconds")
        with lock:
            typer.echo(f"{stamp}  {event:<8} {detail}", err=event in ("warning", "error"))

    classifier = load_model(model, threads)
    point, _ = resolve_point(classifier.contract, site, no_site)  # the same threshold watch decides with
    screener = make_screener(
        classifier,
        point=point,
        on_warning=lambda path, message: report("warning", f"{Path(path).name[:16]}: {message}"),
        no_gate=no_gate,
        with_ids=with_ids,
        heatmap=data / HEATMAPS if classifier.contract.heatmap is not None else None,
        inputs=[str(data / FILMS)],
        absolute_heatmap_paths=True,
    )
    config = NodeConfig(
        data=data,
        db=db or data / DB_NAME,
        ae_title=ae_title,
        host=host,
        port=port,
        forward=destination,
        policy=policy,
        with_ids=with_ids,
        retry_max_s=retry_max,
    )
    version = classifier.contract.version
    try:
        node = DicomNode(config, screener.screen, version, report)
        bound_host, bound_port = node.start()
    except AuditLogError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    rule = f"site profile {point.profile}" if point.source == "site" else "the model's"
    _say(
        f"DICOM node {ae_title} listening on {bound_host}:{bound_port} with model {version}, "
        f"threshold {point.threshold:g} ({rule}); "
        f"films in {data / FILMS}, results in {config.db}"
        + (f", sent to {destination}" if destination else "")
        + "; Ctrl-C stops"
    )
    if bound_host in ("127.0.0.1", "::1", "localhost"):
        _say("only this machine can connect: give --host 0.0.0.0 (and --allow-ae/--allow-peer) for the X-ray unit")

    run_until_signalled(node, lambda name: _say(f"{name}: finishing the current film, then stopping"))
    if node.failure:
        raise typer.Exit(EXIT_USAGE)


def _say(message: str) -> None:
    typer.echo(f"pneumoscan: {message}", err=True)
