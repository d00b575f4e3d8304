"""edge_app.serve.cli: the command without the [serve] extra, and its refusals before starting."""

from __future__ import annotations

import subprocess
import sys

from serve_helpers import TINY_MODEL, run_env

WITHOUT_FLASK = "import sys; sys.modules['flask'] = None; from edge_app.cli import main; sys.argv = ['pneumoscan', *sys.argv[1:]]; main()"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_FLASK, *args], capture_output=True, text=True,
                          timeout=60, env=run_env(), stdin=subprocess.DEVNULL)


def test_without_the_serve_extra_the_cli_works_and_serve_says_what_to_install(tmp_path) -> None:
    helped = run("--help")
    assert helped.returncode == 0 and "serve" in helped.stdout
    refused = run("serve", "--data", str(tmp_path / "data"), "--db", str(tmp_path / "log.sqlite"))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "pneumoscan: error: the web page needs the [serve] extra: pip install 'pneumoscan[serve]' (flask is missing)"
    )
    assert not (tmp_path / "data").exists() and not (tmp_path / "log.sqlite").exists()


def test_unusable_audit_log_stops_the_server_before_it_listens(tmp_path) -> None:
    bad = tmp_path / "log.sqlite"
    bad.write_text("not a database")
    done = subprocess.run([sys.executable, "-m", "edge_app", "serve", "--port", "0", "--db", str(bad),
                           "--data", str(tmp_path / "data"), "--model", str(TINY_MODEL)],
                          capture_output=True, text=True, timeout=60, env=run_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "not a readable pneumoscan audit log" in done.stderr and "serving" not in done.stderr
    assert bad.read_text() == "not a database"


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "edge_app", "serve", "--port", str(port), "--db",
                               str(tmp_path / "log.sqlite"), "--data", str(tmp_path / "data"), "--model", str(TINY_MODEL)],
                              capture_output=True, text=True, timeout=60, env=run_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"pneumoscan: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
