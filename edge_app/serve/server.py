"""Run the page: check the address is safe to listen on, build the app, serve it with waitress.

Waitress is a production WSGI server in pure Python (no compiler, no C extension: it installs on
any Pi). It buffers each request body before the app sees it, up to ``max_request_body_size``,
which is set just above the upload cap so an oversized body is refused without being kept.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
from collections.abc import Callable

from edge_app.serve.app import create_app
from edge_app.serve.context import Settings
from edge_app.serve.service import ScreeningService

#: Waitress worker threads: requests served at once (screening itself is one film at a time).
DEFAULT_THREADS = 4


class UnsafeAddress(ValueError):
    """A non-loopback address without a password; ``str()`` is the one line to print."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_address(host: str, password_set: bool) -> None:
    """Refuse to listen beyond this machine unless a password was set beforehand."""
    if not is_loopback(host) and not password_set:
        raise UnsafeAddress(
            f"--host {host} would let other machines on the network reach patients' results, and no "
            "password is set: run `pneumoscan serve --set-password` (with the same --data) first"
        )


def build_server(service: ScreeningService, settings: Settings, *, threads: int = DEFAULT_THREADS):
    """The waitress server for the app, bound to ``settings.host``/``port`` but not yet running
    (``.run()`` serves; ``.effective_port`` is the port the OS picked for port 0)."""
    from waitress import create_server

    check_address(settings.host, settings.password_hash is not None)
    app = create_app(service, settings)
    # A batch of films from one tablet queues a few requests; that is normal, not a warning.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    return create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=threads,
        max_request_body_size=settings.max_upload_bytes + 1024 * 1024,
        ident="pneumoscan",
        clear_untrusted_proxy_headers=True,
    )


def serve(
    service: ScreeningService,
    settings: Settings,
    *,
    threads: int = DEFAULT_THREADS,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` hears the address once it accepts connections."""
    server = build_server(service, settings, threads=threads)
    host, port = server.effective_host, server.effective_port  # port 0: the one the OS picked
    shown = f"[{host}]" if ":" in str(host) else host
    announce(f"http://{shown}:{port}/")

    def stop(signum, frame):
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
        sys.stdout.flush()
