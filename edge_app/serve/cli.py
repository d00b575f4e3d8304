"""The ``serve`` command (registered on the ``pneumoscan`` app by :mod:`edge_app.cli`).

- ``serve``                 -> :mod:`edge_app.serve.server` (address check, waitress),
  :mod:`edge_app.serve.service` (screening into the audit log)
- ``serve --set-password``  -> :mod:`edge_app.serve.auth`

Exit codes follow ``pneumoscan``'s: 0 stopped normally, 2 the server cannot run (the ``[serve]``
extra is missing, the model, audit log or data folder is unusable, the address is refused).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edge_app.cli_common import (
    ModelOption,
    NoGateOption,
    NoSiteOption,
    SiteOption,
    ThreadsOption,
    db_option,
    fail,
    load_model,
    resolve_point,
    warn,
    with_ids_option,
)

DEFAULT_DB = Path("pneumoscan.sqlite")
DEFAULT_DATA = Path("pneumoscan-data")
DEFAULT_MAX_UPLOAD_MB = 50.0


def _say(message: str) -> None:
    typer.echo(f"pneumoscan: {message}", err=True)


def _read_new_password() -> str:
    """Ask twice on a terminal; read one line from a pipe (for set-up scripts)."""
    if sys.stdin.isatty():
        return typer.prompt("New password for the page", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Anything but loopback (127.0.0.1, ::1, localhost) needs "
            "a password set beforehand with --set-password.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port (0: any free one).")] = 8080,
    db: Annotated[
        Path,
        db_option("Audit log (SQLite), shared with watch and history. Default: $PNEUMOSCAN_DB, else ./pneumoscan.sqlite."),
    ] = DEFAULT_DB,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            envvar="PNEUMOSCAN_DATA",
            help="Folder for uploaded films, their pictures, the password and session key "
            "(created, owner-only). Default: $PNEUMOSCAN_DATA, else ./pneumoscan-data.",
        ),
    ] = DEFAULT_DATA,
    set_password: Annotated[
        bool,
        typer.Option(
            "--set-password",
            help="Set (or change) the page's password, stored as a salted scrypt hash in --data, then exit. "
            "Read from the terminal, or one line from standard input.",
        ),
    ] = False,
    model: ModelOption = None,
    threads: ThreadsOption = 1,
    server_threads: Annotated[
        int, typer.Option("--server-threads", min=1, max=64, help="Requests handled at once (films are screened one at a time).")
    ] = 4,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.01, max=2000, help="Largest file accepted, in MB.")
    ] = DEFAULT_MAX_UPLOAD_MB,
    no_gate: NoGateOption = False,
    site: SiteOption = None,
    no_site: NoSiteOption = False,
    with_ids: Annotated[
        bool, with_ids_option("Record and show DICOM patient name, ID and birth date (hidden otherwise).")
    ] = False,
) -> None:
    """Serve the clinic's page: screen films from a tablet or browser, see results, the day's worklist.

    Listens on 127.0.0.1:8080 by default, so only this machine's browser reaches it; for a
    tablet on the clinic's network, set a password first (--set-password), then --host 0.0.0.0.
    Every film is recorded in the same audit log as `watch` (one row per content and model).
    """
    try:
        import flask  # noqa: F401
        import flask_wtf  # noqa: F401
        import waitress  # noqa: F401
    except ImportError as exc:
        raise fail(f"the web page needs the [serve] extra: pip install 'pneumoscan[serve]' ({exc.name} is missing)") from None
    from edge_app.serve import auth

    if set_password:
        try:
            target = auth.set_password(data, _read_new_password())
        except (auth.PasswordError, OSError) as exc:
            raise fail(str(exc)) from None
        _say(f"password set (salted scrypt hash in {target}); open sessions must log in again")
        return
    from edge_app.audit_log import AuditLogError
    from edge_app.gate import GateUnavailable
    from edge_app.serve.context import Settings
    from edge_app.serve.server import UnsafeAddress, check_address, serve as run_server
    from edge_app.serve.service import ScreeningService
    from edge_app.serve.storage import FilmStore

    try:
        password_hash = auth.read_password_hash(data)
        check_address(host, password_hash is not None)
    except (auth.PasswordError, UnsafeAddress) as exc:
        raise fail(str(exc)) from None
    from edge_app.site_profile import describe_active

    classifier = load_model(model, threads)
    point, _ = resolve_point(classifier.contract, site, no_site)  # exit 2 for a foreign profile
    if no_gate:
        warn("input gate off: images that are not chest X-rays will be scored too")
    try:
        store = FilmStore(data)
        service = ScreeningService(
            classifier, store, db, gate=not no_gate, with_ids=with_ids, point=point,
            on_warning=lambda path, message: warn(f"{path}: {message}"),
        )
    except GateUnavailable as exc:
        raise fail(f"{exc}, or pass --no-gate to screen without the input gate") from None
    except AuditLogError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--data {data}: {exc.strerror or exc}") from None
    settings = Settings(
        host=host,
        port=port,
        db=db.absolute(),
        data=store.root,
        max_upload_bytes=int(max_upload_mb * 1e6),
        with_ids=with_ids,
        password_hash=password_hash,
        site=describe_active(classifier.contract, site, disabled=no_site),
    )

    def announce(url: str) -> None:
        lock = "password required" if password_hash else "no password: this machine only"
        rule = f"site profile {point.profile}" if point.source == "site" else "the model's"
        _say(f"serving {url} ({lock}) with model {classifier.contract.version}, threshold "
             f"{point.threshold:g} ({rule}); audit log {settings.db}; films in {settings.data}; Ctrl-C stops")

    try:
        run_server(service, settings, threads=server_threads, announce=announce)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    _say("stopped")

