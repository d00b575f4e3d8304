"""Claim owners' liveness: a dead watcher's claim can be taken over, a live one's never."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from edge_app import liveness
from edge_app.liveness import FOREIGN_CLAIM_STALE_AFTER, make_owner, owner_alive, process_start


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _owner(pid: int, start: str = "1", host: str | None = None) -> str:
    mine = make_owner().rsplit(":", 4)
    return f"{host or mine[0]}:{mine[1]}:{pid}:{start}:cafe"


def test_owner_liveness() -> None:
    now = datetime.now(timezone.utc)
    assert owner_alive(make_owner(), now.isoformat())
    me = make_owner().rsplit(":", 4)
    assert not owner_alive(_owner(os.getpid(), start=str(int(me[3]) + 1)), None)  # pid reused
    assert not owner_alive(_owner(_dead_pid()), None)
    assert not owner_alive("garbage", None)
    assert owner_alive(_owner(1, host="other-device"), now.isoformat())
    old = now - FOREIGN_CLAIM_STALE_AFTER - timedelta(seconds=1)
    assert not owner_alive(_owner(1, host="other-device"), old.isoformat())


def test_killed_but_unreaped_owner_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = _owner(child.pid, process_start(child.pid))
    assert owner_alive(owner, None)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while owner_alive(owner, None) and time.monotonic() < deadline:  # a zombie until reaped
        time.sleep(0.01)
    assert not owner_alive(owner, None)
    child.wait()


def test_nothing_is_read_at_import() -> None:
    """Importing the module reads no /proc file: the boot id is looked up on first use."""
    code = (
        "import builtins, sys; opened = []; real = builtins.open\n"
        "builtins.open = lambda f, *a, **k: (opened.append(str(f)), real(f, *a, **k))[1]\n"
        "import edge_app.liveness, edge_app.audit_log\n"
        "print([f for f in opened if f.startswith('/proc')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert liveness.boot_id() == liveness.boot_id()  # cached after the first look
