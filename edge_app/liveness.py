"""Is the process that claimed an image still alive? Owner ids a later watcher can check.

The audit log's claim protocol (:mod:`edge_app.audit_log`) lets a watcher take over a claim whose
owner died, and must never take one from a live owner. An owner id names the host, the boot, the
pid and the process's start time (so a later process that reused the pid is not mistaken for the
owner), plus a nonce. On Linux liveness is read from ``/proc``; elsewhere only the pid is
checked. Nothing is read at import: the boot id and host name are looked up on first use.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from datetime import datetime, timedelta, timezone

#: A claim made on another machine (a database on a shared folder) is presumed abandoned after
#: this long; on this machine the owner's process is checked directly.
FOREIGN_CLAIM_STALE_AFTER = timedelta(minutes=10)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a running process, ``None`` if it is gone.

    With the boot id this tells a live owner from a later process that reused its pid.
    A zombie (killed, not yet reaped) counts as gone.
    """
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name in (...) may contain spaces
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@functools.cache
def boot_id() -> str:
    """The first 8 characters of this boot's id (``-`` where the kernel offers none)."""
    return (_read("/proc/sys/kernel/random/boot_id") or "-")[:8]


@functools.cache
def host() -> str:
    return socket.gethostname().replace(":", "_")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_owner() -> str:
    """A new claim-owner id for this process: unique per watcher, checkable for liveness."""
    pid = os.getpid()
    return f"{host()}:{boot_id()}:{pid}:{process_start(pid) or '-'}:{secrets.token_hex(4)}"


def owner_alive(owner: str, claimed_at: str | None) -> bool:
    """Whether the process named ``owner`` (from :func:`make_owner`) may still be working on a
    claim it made at ``claimed_at`` (UTC ISO-8601)."""
    try:
        owner_host, boot, pid_text, start, _nonce = owner.rsplit(":", 4)
        pid = int(pid_text)
    except ValueError:
        return False
    if owner_host != host():
        try:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(claimed_at or "")
        except ValueError:
            return False
        return age < FOREIGN_CLAIM_STALE_AFTER
    if boot != boot_id():
        return False  # claimed before this machine last booted
    if os.path.isdir("/proc/self"):
        return process_start(pid) == start or (start == "-" and pid_alive(pid))
    return pid_alive(pid)
