"""Who may use the page: one clinic password, kept as a salted scrypt hash, and signed sessions.

- The password is set beforehand with ``pneumoscan serve --set-password`` and stored in
  ``DATA/password`` (mode 0600) as Werkzeug's ``scrypt:N:r:p$salt$hash``: a standard
  memory-hard KDF with a random salt, checked in constant time. The plain password is never
  written anywhere.
- Sessions are Flask's signed cookies (HttpOnly, SameSite=Strict) under a random key kept in
  ``DATA/secret_key`` (0600), so a restart does not log the nurse out. A session remembers a
  fingerprint of the password hash: setting a new password ends every open session.
- :class:`LoginThrottle` slows guessing: after a few wrong passwords, logins are refused for a
  while (the tablet's nurse waits a minute; a script guessing over the clinic's Wi-Fi waits forever).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

PASSWORD_FILE = "password"
SECRET_FILE = "secret_key"

#: Shorter passwords are refused by ``--set-password``: the page may be reachable on the
#: clinic's network, and a guessable password would be the only lock on patients' films.
MIN_PASSWORD_LENGTH = 8

#: Werkzeug's scrypt, with its default cost (N=2**15, r=8, p=1: 32 MB, ~0.1 s here, well under
#: a second on a Pi 4). Named explicitly so a Werkzeug default change cannot weaken it unseen.
KDF_METHOD = "scrypt:32768:8:1"


class PasswordError(ValueError):
    """A password that cannot be set, or a password file that cannot be used (one line)."""


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` whole with mode 0600 (temporary file, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def set_password(data_dir: str | os.PathLike, password: str) -> Path:
    """Hash ``password`` and store it in ``data_dir`` (created if needed); returns the file."""
    from werkzeug.security import generate_password_hash

    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password != password.strip():
        raise PasswordError("the password must not start or end with a space")
    folder = Path(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / PASSWORD_FILE
    _write_private(target, (generate_password_hash(password, method=KDF_METHOD) + "\n").encode("ascii"))
    return target


def read_password_hash(data_dir: str | os.PathLike) -> str | None:
    """The stored hash, ``None`` if no password was set; :class:`PasswordError` if unusable."""
    path = Path(data_dir) / PASSWORD_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordError(f"cannot read the password file {path}: {exc}") from None
    if not text.startswith(("scrypt:", "pbkdf2:")) or text.count("$") != 2:
        raise PasswordError(f"{path} is not a password file written by `pneumoscan serve --set-password`")
    if path.stat().st_mode & 0o077:
        raise PasswordError(f"{path} can be read by other users: run chmod 600 {path}, or set the password again")
    return text


def check_password(stored_hash: str, candidate: str) -> bool:
    from werkzeug.security import check_password_hash

    return check_password_hash(stored_hash, candidate)


def fingerprint(stored_hash: str) -> str:
    """A short digest of the stored hash, kept in sessions: a new password ends old sessions."""
    return hashlib.sha256(stored_hash.encode("ascii")).hexdigest()[:16]


def same_fingerprint(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a, b)


def secret_key(data_dir: str | os.PathLike) -> bytes:
    """The key that signs session cookies, made on first use and kept in ``DATA/secret_key``."""
    path = Path(data_dir) / SECRET_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    _write_private(path, key)
    return key


class LoginThrottle:
    """At most ``attempts`` wrong passwords per ``window`` seconds, from anyone; then logins are
    refused until the oldest one leaves the window. Shared by all clients on purpose: the clinic
    has one password, and an attacker can change address more easily than a nurse can wait."""

    def __init__(self, attempts: int = 5, window: float = 60.0, clock=time.monotonic):
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    def _forget_old(self, now: float) -> None:
        while self._failures and now - self._failures[0] >= self.window:
            self._failures.popleft()

    def wait_seconds(self) -> float:
        """0 if a login may be tried now, else how many seconds until one may."""
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            if len(self._failures) < self.attempts:
                return 0.0
            return self.window - (now - self._failures[0])

    def failed(self) -> None:
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            self._failures.append(now)
