"""The running node: receive (many threads), screen (one thread), forward (one thread), never lose a film.

Receiving only stores a film and queues it; one worker thread screens the queue in order (the
interpreter runs one film at a time, and the device has few cores), so a burst from the unit is
acknowledged at disk speed and screened at model speed. The worker follows the audit log's claim
protocol exactly as ``pneumoscan watch`` does (:func:`edge_app.audit_log.record_screening`: claim,
screen, record), keyed by the film's SHA-256, which is also its name in the store: a film is screened once per model version
however often it is sent, and a node killed mid-film leaves a claim the next start takes over.

On start the store is compared with the log: every stored film without a settled row (received,
acknowledged, then the power went) is queued first. When forwarding, the film's result objects
go into the outbox *before* its row is recorded, so a recorded result always has its objects
queued; a crash in between screens the film again and rebuilds the same objects under the same
UIDs (:mod:`.objects`), which the outbox recognises.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_app.audit_log import AuditLog, AuditLogError, record_screening
from edge_app.dicom_node.header import NOT_FRONTAL_CHEST, film_fields, read_header, refusal
from edge_app.dicom_node.outbox import Destination, Forwarder, Outbox
from edge_app.dicom_node.scp import AccessPolicy, StorageSCP
from edge_app.dicom_node.storage import FilmStore, StoredFilm
from edge_app.results import Result

#: Folders under ``--data`` (besides the store's ``films/`` and ``tmp/``).
HEATMAPS = "heatmaps"
OUTBOX = "outbox"

#: The audit log's default name, inside ``--data``.
DB_NAME = "pneumoscan.sqlite"

Reporter = Callable[[str, str], None]  # (event, detail)


@dataclass(frozen=True)
class NodeConfig:
    """Everything ``pneumoscan dicom-node`` was told; the defaults are the command's."""

    data: Path
    db: Path
    ae_title: str = "PNEUMOSCAN"
    host: str = "127.0.0.1"
    port: int = 11112
    forward: Destination | None = None
    policy: AccessPolicy = AccessPolicy()
    with_ids: bool = False
    retry_max_s: float = 60.0


class DicomNode:
    """One node: :meth:`start`, then :meth:`stop` (from a signal handler's thread or any other).

    ``screen(path) -> Result`` is :meth:`edge_app.screening.Screener.screen` (with heatmaps going
    to ``DATA/heatmaps`` when the model has them); it must not raise for a bad film.
    """

    def __init__(self, config: NodeConfig, screen: Callable[[str], Result], model_version: str, report: Reporter):
        self.config = config
        self.screen = screen
        self.model_version = model_version
        self.report = report
        self.store = FilmStore(config.data)
        self.outbox = Outbox(config.data / OUTBOX, self.store.tmp)
        self.queue: queue.Queue[StoredFilm | None] = queue.Queue()
        self.scp = StorageSCP(
            self.store, self.queue.put, ae_title=config.ae_title, policy=config.policy, report=report
        )
        self.forwarder = None
        if config.forward is not None:
            self.forwarder = Forwarder(
                self.outbox, config.forward, config.ae_title, max_delay=config.retry_max_s, report=report
            )
        self.stopped = threading.Event()
        self.failure: str | None = None  # why the worker stopped the node, if it did
        self._threads: list[threading.Thread] = []
        with AuditLog(config.db) as log:  # fails now, in one line, if the log cannot be used
            self._recover(log)

    def start(self) -> tuple[str, int]:
        """Start screening, forwarding and listening; the address really bound."""
        self._spawn(self._work, "screening")
        if self.forwarder is not None:
            self._spawn(self.forwarder.run, "forwarding")
        server = self.scp.start(self.config.host, self.config.port)
        return server.server_address[:2]

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop receiving, finish the film being screened, stop forwarding (safe to call twice)."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.scp.stop()
        self.queue.put(None)
        if self.forwarder is not None:
            self.forwarder.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    # --- the screening worker ------------------------------------------------------------------

    def _work(self) -> None:
        try:
            with AuditLog(self.config.db) as log:
                while not self.stopped.is_set():
                    film = self.queue.get()
                    if film is None:
                        break
                    self._screen_once(log, film)
        except Exception as exc:  # noqa: BLE001 - the log or the disk failed: stop, don't go deaf
            self.failure = str(exc) if isinstance(exc, AuditLogError) else f"{type(exc).__name__}: {exc}"
            self.report("error", f"{self.failure}; stopping (received films stay stored and are screened at the next start)")
            threading.Thread(target=self.stop, daemon=True).start()

    def _recover(self, log: AuditLog) -> None:
        settled = log.settled(self.model_version, include_errors=True)
        backlog = [film for film in self.store.all() if film.sha256 not in settled]
        if backlog:
            self.report("recover", f"{len(backlog)} stored film(s) not yet screened: screening them first")
        for film in backlog:
            self.queue.put(film)

    def _screen_once(self, log: AuditLog, film: StoredFilm) -> None:
        name = film.path.name[:16]
        done = record_screening(
            log,
            lambda: self._screen_and_queue(film),
            sha256=film.sha256,
            path=str(film.path),
            size=film.size,
            model_version=self.model_version,
        )
        if done.status == "already":
            self.report("skipped", f"{name}: already screened")
        if done.status != "recorded":
            return  # "busy": another live process is screening this film and will record it
        if not done.stored:
            self.report("warning", f"{name}: another process took over this film's claim")
            return
        result = done.result
        if result.ok:
            uncertain = " (uncertain)" if result.uncertain else ""
            self.report("scored", f"{name}  {result.label} score {result.score}{uncertain}")
        else:
            self.report("refused" if NOT_FRONTAL_CHEST in (result.error or "") else "failed", f"{name}  {result.error}")

    def _screen_and_queue(self, film: StoredFilm) -> Result:
        """Screen ``film`` and, when forwarding, put its result objects in the outbox: before
        :func:`record_screening` records the row, so a recorded result always has them queued."""
        result, header, picture = self._result(film)
        if self.forwarder is not None and header is not None:
            self._queue_objects(header, result, film, picture)
        return result

    def _result(self, film: StoredFilm) -> tuple[Result, object | None, np.ndarray | None]:
        """The film's result, its header (``None`` if unreadable) and its heatmap overlay."""
        path = str(film.path)
        try:
            header = read_header(path)
        except Exception:  # noqa: BLE001 - checked on receipt; only a damaged disk gets here
            return Result(path, error="the stored file cannot be read back (damaged disk?)"), None, None
        calling_ae = str(header.file_meta.get("SourceApplicationEntityTitle", "") or "").strip() or None
        fields = film_fields(header, with_ids=self.config.with_ids, calling_ae=calling_ae)
        reason = refusal(header)
        if reason is not None:
            return Result(path, error=reason, extra={"dicom": fields}), header, None
        result = self.screen(path)
        result.extra["dicom"] = {**result.extra.get("dicom", {}), **fields}
        return result, header, _overlay(result)

    def _queue_objects(self, header, result: Result, film: StoredFilm, picture: np.ndarray | None) -> None:
        from edge_app.dicom_node.objects import build

        try:
            objects = build(header, result, film.sha256, self.model_version, picture)
        except Exception as exc:  # noqa: BLE001 - the result stands without its copy for the PACS
            self.report("warning", f"{film.path.name[:16]}: result objects could not be built ({type(exc).__name__})")
            return
        made = {"sr": objects.sr, "sc": objects.sc}
        self.outbox.put(film.path.name[:16], {kind: ds for kind, ds in made.items() if ds is not None})


def _overlay(result: Result) -> np.ndarray | None:
    """The heatmap the screener wrote for ``result``, as RGB pixels (for the Secondary Capture)."""
    heatmap = result.extra.get("heatmap") if result.ok else None
    if not heatmap:
        return None
    from PIL import Image

    try:
        with Image.open(heatmap) as image:
            return np.asarray(image.convert("RGB"))
    except OSError:
        return None


def run_until_signalled(node: DicomNode, notify: Callable[[str], None]) -> None:
    """Block until SIGINT/SIGTERM (or the node stopping itself), then stop the node cleanly.

    Safe to interrupt harder: a second signal or kill -9 loses nothing acknowledged either."""
    requested = threading.Event()

    def handler(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        notify(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not requested.is_set() and not node.stopped.is_set():
            requested.wait(0.5)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    node.stop()
