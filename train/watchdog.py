"""Ending every process of a distributed run, within seconds, when one of them stops.

JAX alone is not enough: it notices a dead process only after its heartbeat timeout (100 s by
default) and then aborts with pages of C++ log, a collective waiting on a dead peer can sit until
then, and JAX's distributed client traps SIGTERM, so a scheduler's or a user's stop request does
not stop a worker. The watchdog is a plain TCP link from every process to process 0, beside the
JAX coordinator (its port + 1):

- a process that is killed has its socket closed by the kernel, so its peer sees end-of-file at
  once; a host that freezes or a network that is cut shows as missing heartbeats;
- a process that fails with an error says why (``fail REASON``) before it exits, and process 0
  relays the reason to everyone else;
- SIGTERM and SIGINT end the process (and so, by the two rules above, the run) even while the
  main thread is inside a JAX computation.

Every process prints one line saying which process stopped and why, then exits with
:data:`EXIT_PEER_STOPPED` (or the code of its own error). The protocol is one text line per
message: ``hello ID``, ``beat``, ``done``, ``fail REASON`` (a whole sentence naming the process
that stopped, which process 0 passes on unchanged).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

HEARTBEAT_SECONDS = 1.0
#: A peer silent for this long is taken for dead (a frozen host or a cut network); a killed
#: process is noticed at once, through its closed socket.
SILENCE_SECONDS = 60.0
EXIT_PEER_STOPPED = 1


class WatchdogError(RuntimeError):
    """The processes could not be linked (a worker did not join in time, a wrong port, ...)."""


@dataclass
class _Peer:
    process_id: int
    sock: socket.socket
    address: str
    last_seen: float = field(default_factory=time.monotonic)
    buffer: bytes = b""


def _send(sock: socket.socket, line: str) -> None:
    try:
        sock.sendall((line.replace("\n", " ") + "\n").encode())
    except OSError:
        pass  # the peer is gone; reading its socket reports that


class Watchdog:
    """One process's end of the links; :meth:`link` builds it, :meth:`finish` retires it."""

    def __init__(self, process_id: int, num_processes: int, peers: list[_Peer], silence: float, log=None):
        self.process_id = process_id
        self.num_processes = num_processes
        self._peers = {p.process_id: p for p in peers}
        self._silence = silence
        self._log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self._finished = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._watch, name="pneumoscan-watchdog", daemon=True)

    # -- building the links ----------------------------------------------------------------

    @classmethod
    def link(
        cls,
        host: str,
        port: int,
        process_id: int,
        num_processes: int,
        join_timeout: float = 300.0,
        silence: float = SILENCE_SECONDS,
        log=None,
    ) -> "Watchdog":
        """Process 0 waits for every other process to connect; the others connect to it.

        Both sides give up after ``join_timeout`` seconds with a :class:`WatchdogError` naming
        who is missing, so a worker that never starts cannot leave the rest waiting forever.
        """
        deadline = time.monotonic() + join_timeout
        if process_id == 0:
            peers = cls._accept_all(port, num_processes, deadline, join_timeout)
        else:
            peers = [cls._connect(host, port, process_id, deadline, join_timeout)]
        dog = cls(process_id, num_processes, peers, silence, log)
        dog._thread.start()
        return dog

    @staticmethod
    def _accept_all(port: int, num_processes: int, deadline: float, timeout: float) -> list[_Peer]:
        if socket.has_dualstack_ipv6():  # "localhost" may resolve to ::1 on the workers
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
        peers: dict[int, _Peer] = {}
        try:
            while len(peers) < num_processes - 1:
                left = deadline - time.monotonic()
                missing = sorted(set(range(1, num_processes)) - set(peers))
                if left <= 0:
                    raise WatchdogError(
                        f"process(es) {', '.join(map(str, missing))} did not join within {timeout:.0f} s "
                        f"(started? can they reach this host on port {port}?)"
                    )
                server.settimeout(left)
                try:
                    sock, address = server.accept()
                except socket.timeout:
                    continue
                sock.settimeout(max(1.0, min(10.0, left)))
                received = b""
                try:  # byte-exact: whatever follows the hello line (a "fail") must not be lost
                    while b"\n" not in received and len(received) < 256:
                        chunk = sock.recv(256)
                        if not chunk:
                            break
                        received += chunk
                except OSError:
                    pass
                line, _, rest = received.partition(b"\n")
                hello = line.decode(errors="replace").split()
                if len(hello) != 2 or hello[0] != "hello" or not hello[1].isdigit():
                    sock.close()  # not one of ours (a port scanner, a stale client)
                    continue
                pid = int(hello[1])
                if not 0 < pid < num_processes or pid in peers:
                    _send(sock, f"fail process id {pid} is out of range or already taken")
                    sock.close()
                    continue
                sock.settimeout(None)
                peers[pid] = _Peer(pid, sock, str(address[0]).removeprefix("::ffff:"), buffer=rest)
        finally:
            server.close()
        return list(peers.values())

    @staticmethod
    def _connect(host: str, port: int, process_id: int, deadline: float, timeout: float) -> _Peer:
        last_error = None
        while time.monotonic() < deadline:
            try:
                sock = socket.create_connection((host, port), timeout=5.0)
            except OSError as exc:  # process 0 not listening yet
                last_error = exc
                time.sleep(0.5)
                continue
            sock.settimeout(None)
            _send(sock, f"hello {process_id}")
            return _Peer(0, sock, f"{host}:{port}")
        raise WatchdogError(
            f"could not reach process 0's watchdog at {host}:{port} within {timeout:.0f} s ({last_error})"
        )

    # -- signals -------------------------------------------------------------------------------

    def trap_signals(self) -> None:
        """SIGTERM and SIGINT end the run even while the main thread is inside JAX.

        Python's C-level handler writes the signal number to the wake-up pipe the moment the
        signal arrives; the watchdog thread reads it. Call from the main thread, after JAX has
        installed its own SIGTERM handler, which this replaces.
        """
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: None)

    # -- watching --------------------------------------------------------------------------------

    def _name(self, pid: int) -> str:
        peer = self._peers.get(pid)
        where = f" at {peer.address}" if peer else ""
        return f"process {pid}{' (the coordinator)' if pid == 0 else ''}{where}"

    def _watch(self) -> None:
        next_beat = 0.0
        while not self._finished.is_set():
            now = time.monotonic()
            if now >= next_beat:
                for peer in list(self._peers.values()):
                    _send(peer.sock, "beat")
                next_beat = now + HEARTBEAT_SECONDS
            socks = {p.sock: p for p in self._peers.values()}
            try:
                readable, _, _ = select.select([*socks, self._wake_r], [], [], HEARTBEAT_SECONDS)
            except (OSError, ValueError):
                if self._finished.is_set():
                    return
                raise
            if self._finished.is_set():
                return
            for item in readable:
                if item == self._wake_r:
                    self._on_signal()
                else:
                    self._on_readable(socks[item])
            now = time.monotonic()
            for peer in list(self._peers.values()):
                if now - peer.last_seen > self._silence:
                    self._stop(
                        f"no sign of life from {self._name(peer.process_id)} for {self._silence:.0f} s "
                        "(host down or network cut?)"
                    )

    def _on_signal(self) -> None:
        try:
            data = os.read(self._wake_r, 64)
        except BlockingIOError:
            return
        names = sorted({signal.Signals(b).name for b in data if b in (signal.SIGTERM, signal.SIGINT)})
        if names:
            self._stop(f"process {self.process_id} received {'/'.join(names)}", own=True, code=128 + data[-1])

    def _on_readable(self, peer: _Peer) -> None:
        try:
            chunk = peer.sock.recv(4096)
        except OSError:
            chunk = b""
        peer.last_seen = time.monotonic()
        peer.buffer += chunk
        while b"\n" in peer.buffer:  # a last word is read before the hang-up that follows it
            line, peer.buffer = peer.buffer.split(b"\n", 1)
            word, _, rest = line.decode(errors="replace").partition(" ")
            if word == "done":
                self._peers.pop(peer.process_id, None)
                peer.sock.close()
                return
            if word == "fail":  # the reason names the process that stopped
                self._stop(rest)
                return
        if not chunk:
            name = self._name(peer.process_id)
            self._peers.pop(peer.process_id, None)
            if not self._finished.is_set():
                self._stop(f"{name} stopped without finishing (killed or crashed)")

    def _stop(self, reason: str, own: bool = False, code: int = EXIT_PEER_STOPPED) -> None:
        """Tell the others why, say it once here, and end this process at once."""
        if self._finished.is_set():
            return
        self._finished.set()
        self._last_word(f"fail {reason}")
        ending = "stopping" if own else f"ending process {self.process_id} too"
        self._log(f"error: distributed training stopped: {reason}; {ending}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def _last_word(self, line: str, linger: float = 1.0) -> None:
        """Send ``line`` to every peer so that it arrives before this process is gone.

        Closing a socket with unread data in it sends a reset, which can make the peer drop the
        line unread; so half-close, and read until each peer hangs up (it exits on reading the
        line) or ``linger`` seconds pass.
        """
        socks = []
        for peer in list(self._peers.values()):
            _send(peer.sock, line)
            try:
                peer.sock.shutdown(socket.SHUT_WR)
                socks.append(peer.sock)
            except OSError:
                pass
        deadline = time.monotonic() + linger
        while socks and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select(socks, [], [], max(0.0, deadline - time.monotonic()))
            except (OSError, ValueError):
                return
            for sock in readable:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    socks.remove(sock)

    # -- the ways out -------------------------------------------------------------------------

    def abort(self, reason: str, code: int) -> None:
        """This process failed (``reason`` already printed): tell the others, exit with ``code``."""
        if self._finished.is_set():
            os._exit(code)
        self._finished.set()
        self._last_word(f"fail process {self.process_id} failed: {reason}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def finish(self) -> None:
        """Every collective step is over: say so, and stop watching (a later exit is no failure)."""
        if self._finished.is_set():
            return
        self._finished.set()
        for peer in list(self._peers.values()):
            _send(peer.sock, "done")
        os.write(self._wake_w, b"\0")  # wake the thread so it sees the flag
        self._thread.join(timeout=5)
        for peer in list(self._peers.values()):
            try:
                peer.sock.close()
            except OSError:
                pass
        self._peers.clear()
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # not the main thread
            pass
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
            except ValueError:
                pass
