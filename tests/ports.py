"""Free loopback ports for tests that start real peers (a watchdog group, a PACS that is down, a
DICOM receiver): one helper, so every test asks the kernel the same way. A training cluster's
pair of ports comes from :func:`train.distributed.free_coordinator_port`.

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
