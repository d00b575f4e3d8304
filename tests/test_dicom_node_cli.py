"""``pneumoscan dicom-node``'s options: a bad one is one line and exit 2, before the model loads or
a port is taken; a port already in use is said in one line too."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dicom_node_helpers import TINY_MODEL, Node
from edge_app.cli import app


@pytest.mark.parametrize(
    "args, said",
    [
        (["--forward", "PACS@host"], "not AE@host:port"),
        (["--forward", "PACS@host:99999"], "port must be a number"),
        (["--allow-peer", "xray-room"], "not an IP address or network"),
        (["--ae-title", "A_NAME_LONGER_THAN_16"], "is not an AE title"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, said):
    result = CliRunner().invoke(app, ["dicom-node", "--data", str(tmp_path / "d"), *args])
    assert result.exit_code == 2
    assert said in result.output
    assert not (tmp_path / "d").exists()


def test_data_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "d").write_text("not a folder")
    result = CliRunner().invoke(app, ["dicom-node", "--data", str(tmp_path / "d")])
    assert result.exit_code == 2 and "is a file; give a folder" in result.output


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    first = Node(tmp_path)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "edge_app", "dicom-node", "--port", str(first.port), "--data", str(tmp_path / "other"),
             "--model", str(TINY_MODEL)],
            capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.stop()
