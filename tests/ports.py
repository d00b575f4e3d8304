"""Free loopback ports for tests that start real peers (a watchdog group, a JAX cluster, a PACS
that is down, a DICOM receiver): one helper, so every test asks the kernel the same way.

A port is free when the kernel hands it out for port 0; it stays free only until someone binds
it, which is good enough on a loopback that only the test itself uses.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_pair(tries: int = 50) -> int:
    """A port whose neighbour is free too (a training cluster's watchdog listens on PORT + 1)."""
    for _ in range(tries):
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no free pair of loopback ports in {tries} tries")
