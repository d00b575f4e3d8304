"""edge_app.serve.auth: the stored password hash, the session key, the login throttle."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("werkzeug")

from edge_app.serve import auth  # noqa: E402


def test_password_is_stored_salted_hashed_and_private(tmp_path: Path) -> None:
    first = auth.set_password(tmp_path / "data", "clinic-pass-1")
    stored = first.read_text().strip()
    assert first.stat().st_mode & 0o777 == 0o600
    assert stored.startswith(auth.KDF_METHOD + "$") and "clinic-pass-1" not in stored
    assert auth.read_password_hash(tmp_path / "data") == stored
    assert auth.check_password(stored, "clinic-pass-1")
    assert not auth.check_password(stored, "clinic-pass-2")
    auth.set_password(tmp_path / "data", "clinic-pass-1")
    again = auth.read_password_hash(tmp_path / "data")
    assert again != stored  # a new salt each time
    assert auth.fingerprint(again) != auth.fingerprint(stored)  # so old sessions end


@pytest.mark.parametrize("password, reason", [("short", "at least 8"), (" padded-pass ", "space")])
def test_weak_or_ambiguous_passwords_are_refused(tmp_path: Path, password: str, reason: str) -> None:
    with pytest.raises(auth.PasswordError, match=reason):
        auth.set_password(tmp_path, password)
    assert not (tmp_path / auth.PASSWORD_FILE).exists()


def test_unusable_password_files_are_reported(tmp_path: Path) -> None:
    assert auth.read_password_hash(tmp_path) is None
    path = tmp_path / auth.PASSWORD_FILE
    path.write_text("hunter2\n")
    path.chmod(0o600)
    with pytest.raises(auth.PasswordError, match="not a password file"):
        auth.read_password_hash(tmp_path)
    auth.set_password(tmp_path, "clinic-pass-1")
    path.chmod(0o644)
    with pytest.raises(auth.PasswordError, match="chmod 600"):
        auth.read_password_hash(tmp_path)


def test_secret_key_is_made_once_and_kept(tmp_path: Path) -> None:
    key = auth.secret_key(tmp_path)
    assert len(key) == 32 and auth.secret_key(tmp_path) == key
    assert (tmp_path / auth.SECRET_FILE).stat().st_mode & 0o777 == 0o600


def test_throttle_refuses_after_too_many_failures_then_forgets() -> None:
    now = [0.0]
    throttle = auth.LoginThrottle(attempts=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_seconds() == 0
        throttle.failed()
        now[0] += 1
    assert throttle.wait_seconds() == pytest.approx(57)
    now[0] = 60.5
    assert throttle.wait_seconds() == 0  # the first failure left the window
