"""Shared by the edge benchmarks: how to run `pneumoscan` as a clinic would, and measure it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pneumoscan_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m edge_app``."""
    script = Path(sys.executable).with_name("pneumoscan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "edge_app"]


def measure(
    command: list[str], env: dict | None = None, stdout=subprocess.DEVNULL, allowed_exits: tuple[int, ...] = (0,)
) -> tuple[float, float, float]:
    """Run ``command``; return (wall seconds, the child's peak RSS in MB, its CPU seconds).

    ``os.wait4`` gives the child's own resource usage, so the figures are the app's and not this
    script's. CPU seconds (user + system) barely move when other jobs share the machine, wall
    time does: report both. Raises if the command exits with a code not in ``allowed_exits``.
    """
    with tempfile.TemporaryFile(mode="w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if process.returncode not in allowed_exits:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n{stderr}")
    peak_mb = usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return wall, peak_mb, usage.ru_utime + usage.ru_stime


def load_note() -> str:
    """The machine's load while measuring: wall times on a busy machine are upper bounds."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def clean_env(**extra: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env
