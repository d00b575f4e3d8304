"""Helpers for the ``pneumoscan serve`` tests: the server as a real process on loopback.

:func:`start_server` runs ``python -m edge_app serve --port 0 ...`` (the OS picks a free port;
the server prints the address it listens on) and :class:`Server.stop` ends it with SIGTERM.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import REPO, synthetic_film

TINY_MODEL = REPO / "tests" / "data" / "tiny-int8.tflite"
START_TIMEOUT_S = 30.0

_ADDRESS = re.compile(r"serving (http://\S+/)")


#: An empty configuration folder: no site profile applies unless a test gives one (``--site``).
_NO_CONFIG = tempfile.mkdtemp(prefix="pneumoscan-no-config-")


def run_env() -> dict:
    env = dict(os.environ)
    for name in ("PNEUMOSCAN_MODEL", "PNEUMOSCAN_DB", "PNEUMOSCAN_DATA", "PNEUMOSCAN_SITE"):
        env.pop(name, None)
    env["XDG_CONFIG_HOME"] = _NO_CONFIG
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def serve_cmd(db: Path, data: Path, *extra: str, model: Path | None = TINY_MODEL) -> list[str]:
    cmd = [sys.executable, "-m", "edge_app", "serve", "--port", "0", "--db", str(db), "--data", str(data)]
    if model is not None:
        cmd += ["--model", str(model)]
    return cmd + list(extra)


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    db: Path
    data: Path
    stderr: list[str] = field(default_factory=list)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(db: Path, data: Path, *extra: str, model: Path | None = TINY_MODEL, env: dict | None = None) -> Server:
    """Start the server and wait until it says where it listens; fail with its output if it dies.
    ``env``: the environment (default :func:`run_env`)."""
    proc = subprocess.Popen(
        serve_cmd(db, data, *extra, model=model),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=run_env() if env is None else env,
    )
    lines: list[str] = []
    found = threading.Event()
    address: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            match = _ADDRESS.search(line)
            if match and not address:
                address.append(match.group(1))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not found.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            time.sleep(0.1)
            raise AssertionError("server did not start:\n" + "\n".join(lines))
    return Server(proc, address[0], db, data, lines)


def film_jpeg(seed: int = 0, size: int = 160, opacity: float = 0.0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(synthetic_film(size, seed=seed, opacity=opacity)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def film_png(seed: int = 0, size: int = 160) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(synthetic_film(size, seed=seed)).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_bytes(count: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8).tobytes()


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: What Debian's chromium needs to run headless as root in a container, and nothing that would
#: reach the network on its own (updates, sync, field trials).
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--hide-scrollbars",
)


def have_chromium() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


def chromium(profile: Path, width: int = 1280, height: int = 800):
    """Debian's chromium driven by Selenium through Debian's chromedriver (no browser download:
    both paths are given, so Selenium Manager has nothing to fetch). Console messages are kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def console_errors(driver) -> list[str]:
    """Console errors since the last call (CSP violations and failed loads are errors too)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
