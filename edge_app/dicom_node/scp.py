"""The Storage SCP: who may connect, what it may send, and what the sender is told.

- **Access.** ``--allow-ae`` lists the calling AE titles accepted (anything else gets an
  A-ASSOCIATE-RJ, "calling AE title not recognised": the usual DICOM access control, which an X-ray
  unit's service menu shows); ``--allow-peer`` lists the addresses or networks (``10.1.2.3``,
  ``192.168.1.0/24``) a connection may come from; any other is closed before a byte is read.
- **What it takes.** C-ECHO (Verification), and C-STORE of Computed Radiography, Digital X-Ray
  (for presentation and for processing) and Secondary Capture images, in each transfer syntax
  this installation can decode (uncompressed ones always; JPEG, JPEG-LS, JPEG 2000 and RLE when
  the ``[dicom]`` decoders are installed), so a unit falls back to one the node can read rather
  than sending one it cannot. Anything else is refused at association time, as DICOM intends.
- **What the sender is told.** Success only once the film is on disk (:mod:`.storage`). A dataset
  that does not parse, or lacks what a result needs (its UIDs, its pixels, the SOP class it was
  sent as), gets a failure status and one log line; a full or read-only disk gets "out of
  resources", so the unit keeps the film and sends it again later.
"""

from __future__ import annotations

import ipaddress
import socketserver
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge_app.dicom import quiet_pydicom
from edge_app.dicom_node.header import SOP_CLASSES
from edge_app.dicom_node.storage import FilmStore, StoredFilm

#: C-STORE statuses (PS3.4 Annex B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000

#: Transfer syntaxes offered, in order of preference, if a decoder for each is installed.
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old units)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (12 bit)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)
UNCOMPRESSED = set(TRANSFER_SYNTAXES[:4])

#: How long an idle association is kept open, and how long to wait for a peer's next message.
NETWORK_TIMEOUT_S = 60.0

#: Associations served at once (several units, or one sending over parallel associations).
MAX_ASSOCIATIONS = 16

Reporter = Callable[[str, str], None]  # (event, detail)


def decodable_syntaxes() -> list[str]:
    """The transfer syntaxes of :data:`TRANSFER_SYNTAXES` this installation can decode."""
    from pydicom.pixels import get_decoder

    usable = []
    for syntax in TRANSFER_SYNTAXES:
        try:
            if syntax in UNCOMPRESSED or get_decoder(syntax).is_available:
                usable.append(syntax)
        except NotImplementedError:
            continue
    return usable


@dataclass(frozen=True)
class AccessPolicy:
    """Calling AE titles and peer networks allowed in; empty means anyone."""

    ae_titles: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())

    @classmethod
    def parse(cls, ae_titles: Iterable[str] = (), peers: Iterable[str] = ()) -> "AccessPolicy":
        """From the command line; ``ValueError`` names the entry that is not an address."""
        from edge_app.dicom_node.outbox import check_ae_title

        networks = []
        for text in peers:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"--allow-peer {text!r} is not an IP address or network (e.g. 192.168.1.0/24)") from None
        return cls(tuple(check_ae_title(t.strip()) for t in ae_titles), tuple(networks))

    def peer_allowed(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None) is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def check_dataset(ds, sop_class: str, sop_instance: str, syntax: str) -> tuple[int, str] | None:
    """``(failure status, reason)`` for a dataset the node must not acknowledge, else ``None``.

    The reason names attributes, never their values.
    """
    if str(ds.get("SOPClassUID", "")) != sop_class:
        return DOES_NOT_MATCH_SOP_CLASS, "its SOP Class UID differs from the one it was sent as"
    if str(ds.get("SOPInstanceUID", "")) != sop_instance:
        return DOES_NOT_MATCH_SOP_CLASS, "its SOP Instance UID differs from the one it was sent as"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns", "PixelData"):
        if not ds.get(keyword):
            return DOES_NOT_MATCH_SOP_CLASS, f"it has no {keyword}"
    if syntax in UNCOMPRESSED:
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 16)
        expected = int(ds.Rows) * int(ds.Columns) * samples * frames * bits // 8
        if len(ds.PixelData) < expected:
            return CANNOT_UNDERSTAND, f"its pixel data is truncated ({len(ds.PixelData)} of {expected} bytes)"
    return None


def _file_parts(event) -> tuple[bytes, bytes]:
    """The received dataset as a DICOM Part 10 file, ``(preamble and meta header, dataset)``;
    the meta header names the sender's AE title."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = event.file_meta
    meta.SourceApplicationEntityTitle = event.assoc.requestor.ae_title
    head = DicomBytesIO()
    head.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    return head.getvalue(), event.request.DataSet.getvalue()


class _AllowListServer:
    """Mixed into pynetdicom's threaded server: refuses connections from peers not allowed."""

    policy: AccessPolicy
    report: Reporter

    def verify_request(self, request, client_address) -> bool:
        host = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        if self.policy.peer_allowed(host):
            return True
        self.report("refused", f"connection from {host}: not in --allow-peer")
        return False

    def shutdown(self) -> None:
        # pynetdicom's own shutdown also unregisters the server from its AE's private list,
        # where :meth:`StorageSCP.start` never put it.
        socketserver.BaseServer.shutdown(self)
        self.server_close()


class StorageSCP:
    """Receives films into ``store`` and hands each stored one to ``on_film(film)``.

    ``on_film`` runs on the association's thread after the film is durable; it must be quick
    (the node just queues the film for screening). The sender's AE title is in the stored file's
    meta header.
    """

    def __init__(
        self,
        store: FilmStore,
        on_film: Callable[[StoredFilm], None],
        *,
        ae_title: str = "PNEUMOSCAN",
        policy: AccessPolicy = AccessPolicy(),
        report: Reporter | None = None,
    ):
        from pynetdicom import AE, evt

        self.store = store
        self.on_film = on_film
        self.policy = policy
        self.report = report or (lambda event, detail: None)
        self.syntaxes = decodable_syntaxes()
        ae = AE(ae_title=ae_title)
        ae.maximum_associations = MAX_ASSOCIATIONS
        ae.network_timeout = ae.dimse_timeout = ae.acse_timeout = NETWORK_TIMEOUT_S
        ae.require_calling_aet = list(policy.ae_titles)
        ae.add_supported_context("1.2.840.10008.1.1")  # Verification
        for sop_class in SOP_CLASSES:
            ae.add_supported_context(sop_class, self.syntaxes)
        self.ae = ae
        self.handlers = [
            (evt.EVT_C_STORE, self._handle_store),
            (evt.EVT_C_ECHO, self._handle_echo),
            (evt.EVT_REJECTED, self._handle_rejected),
        ]
        self.server = None

    def start(self, host: str, port: int):
        """Listen on ``host:port`` in background threads; returns the server (``server_address``
        has the port really bound, for ``port=0``). ``OSError`` if the port cannot be had."""
        import threading

        from pynetdicom.transport import ThreadedAssociationServer

        server_class = type("AllowListAssociationServer", (_AllowListServer, ThreadedAssociationServer), {})
        server_class.policy, server_class.report = self.policy, staticmethod(self.report)
        self.server = self.ae.make_server((host, port), evt_handlers=self.handlers, server_class=server_class)
        threading.Thread(target=self.server.serve_forever, name="dicom-scp", daemon=True).start()
        return self.server

    def stop(self) -> None:
        """Stop accepting; associations in progress are aborted (unacknowledged films are the
        sender's to resend; acknowledged ones are already on disk)."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        for assoc in list(self.ae.active_associations):
            assoc.abort()

    # --- handlers (on the association's thread; must never raise) ------------------------------

    def _peer(self, event) -> str:
        requestor = event.assoc.requestor
        return f"AE {requestor.ae_title!r} at {requestor.address}"

    def _handle_echo(self, event) -> int:
        self.report("echo", self._peer(event))
        return SUCCESS

    def _handle_rejected(self, event) -> None:
        self.report("refused", f"association from {self._peer(event)}: calling AE title not in --allow-ae")

    def _handle_store(self, event) -> int:
        request = event.request
        sop_class = str(request.AffectedSOPClassUID)
        syntax = str(event.context.transfer_syntax)
        try:
            with quiet_pydicom():
                ds = event.dataset
                for _ in ds:  # pydicom parses lazily: convert every element now, not at screening
                    pass
                problem = check_dataset(ds, sop_class, str(request.AffectedSOPInstanceUID), syntax)
        except Exception:  # noqa: BLE001 - pydicom's messages may quote the header
            problem = CANNOT_UNDERSTAND, "the dataset cannot be decoded"
        if problem is not None:
            status, reason = problem
            self.report("refused", f"C-STORE from {self._peer(event)}: {reason} (status 0x{status:04X})")
            return status
        try:
            film, new = self.store.store(*_file_parts(event))
        except OSError as exc:
            self.report("refused", f"C-STORE from {self._peer(event)}: cannot store it ({exc.strerror or exc}); the sender keeps it")
            return OUT_OF_RESOURCES
        except Exception as exc:  # noqa: BLE001 - never a traceback into the association
            self.report("refused", f"C-STORE from {self._peer(event)}: cannot store it ({type(exc).__name__})")
            return OUT_OF_RESOURCES
        kind = SOP_CLASSES.get(sop_class, sop_class)
        self.report("received", f"{film.path.name[:16]} ({kind}) from {self._peer(event)}" + ("" if new else ", already stored"))
        try:
            self.on_film(film)
        except Exception as exc:  # noqa: BLE001 - stored is stored: the next start screens it
            self.report("warning", f"{film.path.name[:16]} stored, screening deferred to the next start ({type(exc).__name__})")
        return SUCCESS
