"""Results waiting for the PACS: kept on disk until it has them, sent by a thread of their own.

The outbox is three folders under ``DATA/outbox/``: ``pending/`` (written and fsynced when a film
is screened, before its row is recorded), ``sent/`` (moved there once the destination answered
success) and ``rejected/`` (the destination refused the object itself, e.g. an unsupported SOP
class: sending it again would be refused again; move files back to ``pending/`` to retry).
Files are named ``<film>.<kind>.<SOP Instance UID>.dcm`` (the film's short name, ``sr`` or
``sc``); the UID is derived from the film and model (:mod:`.objects`), so the same result is never
queued twice.

:class:`Forwarder` sends ``pending/`` oldest first over one association at a time. A destination
that is down, refuses the association or runs out of resources is retried with a doubling pause
(up to ``max_delay``); receiving never waits for it, since the two share only the folder. After
a restart whatever is still pending goes first. A crash between a successful send and the move
to ``sent/`` sends that object once more, under the same UIDs, which a PACS stores once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_app.dicom_node.storage import fsync_folder, write_durably

PENDING, SENT, REJECTED = "pending", "sent", "rejected"

#: Seconds to wait for the destination's TCP connect, association reply and each C-STORE reply.
NETWORK_TIMEOUT_S = 10.0

#: Objects sent over one association (and read into memory at once).
BATCH = 32

#: First pause after a failed attempt; it doubles up to ``max_delay``.
FIRST_RETRY_S = 0.5


@dataclass(frozen=True)
class Destination:
    """``AE@host:port`` of the PACS or workstation that receives results."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """``AE@host:port`` (``host`` may be a name or an address); ``ValueError`` explains."""
        ae_title, at, address = text.partition("@")
        host, colon, port = address.rpartition(":")
        if not at or not colon or not ae_title.strip() or not host:
            raise ValueError(f"{text!r} is not AE@host:port (e.g. PACS@192.168.1.20:104)")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        check_ae_title(ae_title.strip())
        return cls(ae_title.strip(), host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def check_ae_title(title: str) -> str:
    """An AE title as DICOM allows it: 1-16 characters of printable ASCII, no backslash."""
    if not 0 < len(title) <= 16 or not title.isascii() or not title.isprintable() or "\\" in title:
        raise ValueError(f"{title!r} is not an AE title (1 to 16 printable ASCII characters, no backslash)")
    return title


def describe(path: Path) -> str:
    """``sr for 0123abcd...``: what an outbox file is, for a log line."""
    film, _, rest = path.name.partition(".")
    return f"{rest.partition('.')[0] or 'object'} for {film}"


class Outbox:
    """The ``pending/``, ``sent/`` and ``rejected/`` folders under ``root``."""

    def __init__(self, root: str | os.PathLike, tmp_folder: str | os.PathLike):
        self.root = Path(root)
        self.tmp = Path(tmp_folder)
        self.folders = {name: self.root / name for name in (PENDING, SENT, REJECTED)}
        for folder in self.folders.values():
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_folder(folder.parent)
        self.changed = threading.Event()

    def put(self, film: str, objects: dict) -> list[Path]:
        """Queue the datasets ``{kind: dataset}`` made for ``film`` (its short name) durably,
        skipping any queued or sent already; their paths."""
        from pydicom.filebase import DicomBytesIO

        queued = []
        for kind, ds in objects.items():
            name = f"{film}.{kind}.{ds.SOPInstanceUID}.dcm"
            target = self.folders[PENDING] / name
            if not any((folder / name).exists() for folder in self.folders.values()):
                buffer = DicomBytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                write_durably(target, [buffer.getvalue()], self.tmp)
            queued.append(target)
        self.changed.set()
        return queued

    def pending(self) -> list[Path]:
        """Files still to send, oldest first."""
        found = []
        for path in self.folders[PENDING].glob("*.dcm"):
            try:
                found.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:
                continue
        return [path for *_, path in sorted(found)]

    def move(self, path: Path, to: str) -> None:
        target = self.folders[to] / path.name
        os.replace(path, target)
        fsync_folder(target.parent)


class Forwarder:
    """Sends the outbox to ``destination`` as ``ae_title`` until :meth:`stop`; run it in a thread.

    ``report(event, detail)`` hears ``sent``, ``rejected`` and ``waiting`` (the destination cannot
    be reached; said once per outage, not on every retry).
    """

    def __init__(
        self,
        outbox: Outbox,
        destination: Destination,
        ae_title: str,
        *,
        max_delay: float = 60.0,
        report: Callable[[str, str], None] | None = None,
    ):
        self.outbox = outbox
        self.destination = destination
        self.ae_title = ae_title
        self.max_delay = float(max_delay)
        self.report = report or (lambda event, detail: None)
        self._stop = threading.Event()
        self._delay = 0.0
        self._down_since: float | None = None

    def stop(self) -> None:
        self._stop.set()
        self.outbox.changed.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self.outbox.changed.clear()
            batch = self.outbox.pending()[:BATCH]
            if not batch:
                self.outbox.changed.wait()
                continue
            try:
                if self._send(batch):
                    self._delay = 0.0
                    continue
            except Exception as exc:  # noqa: BLE001 - never let the forwarding thread die
                self.report("warning", f"forwarding to {self.destination} failed ({type(exc).__name__}: {exc}); retrying")
            self._delay = min(self.max_delay, max(FIRST_RETRY_S, 2 * self._delay))
            self._stop.wait(self._delay)

    def _send(self, batch: list[Path]) -> bool:
        """Send ``batch`` over one association; ``True`` if every file was settled."""
        from pydicom import dcmread
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT_S
        ae.connection_timeout = NETWORK_TIMEOUT_S
        datasets = []
        for path in batch:
            try:
                datasets.append((path, dcmread(path)))
            except Exception:  # noqa: BLE001 - ours, but a damaged disk may still spoil one
                self.outbox.move(path, REJECTED)
                self.report("rejected", f"{describe(path)}: unreadable in the outbox")
        classes = {}
        for _, ds in datasets:
            classes.setdefault(str(ds.SOPClassUID), set()).add(str(ds.file_meta.TransferSyntaxUID))
        for sop_class, syntaxes in classes.items():
            ae.add_requested_context(sop_class, sorted(syntaxes))
        if not datasets:
            return True
        assoc = ae.associate(self.destination.host, self.destination.port, ae_title=self.destination.ae_title)
        if not assoc.is_established:
            self._unreachable("association rejected" if assoc.is_rejected else "no answer")
            return False
        accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts}
        try:
            for path, ds in datasets:
                if self._stop.is_set():
                    return False
                if (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) not in accepted:
                    self.outbox.move(path, REJECTED)
                    self.report("rejected", f"{describe(path)}: {self.destination} does not accept {ds.SOPClassUID.name}")
                    continue
                status = assoc.send_c_store(ds)
                code = getattr(status, "Status", None)
                if code is None:  # the connection went, or the reply timed out
                    self._unreachable("connection lost")
                    return False
                if code == 0x0000 or 0xB000 <= code <= 0xBFFF:  # success, or stored with a warning
                    self.outbox.move(path, SENT)
                    self.report("sent", f"{describe(path)} to {self.destination}")
                elif 0xA700 <= code <= 0xA7FF:  # out of resources: it may have room later
                    self._unreachable(f"out of resources (status 0x{code:04X})")
                    return False
                else:
                    self.outbox.move(path, REJECTED)
                    self.report("rejected", f"{describe(path)}: {self.destination} answered status 0x{code:04X}")
        finally:
            if assoc.is_established:
                assoc.release()
        if self._down_since is not None:
            self._down_since = None
            self.report("sent", f"{self.destination} is reachable again")
        return True

    def _unreachable(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            waiting = len(self.outbox.pending())
            self.report(
                "waiting",
                f"{self.destination}: {why}; {waiting} result object(s) kept in the outbox, retrying",
            )
