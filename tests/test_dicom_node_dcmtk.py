"""The node against a second, independent DICOM implementation: dcmtk (Debian's ``dcmtk``).

``echoscu`` and ``storescu`` are the X-ray unit, ``storescp`` is the PACS the results go to, so the
node is not only proven against pynetdicom talking to itself. Skipped when dcmtk is not installed
(``.ci/run`` installs it).
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

import pytest

from ports import free_port
from dicom_node_helpers import Node, make_film, settled_rows, sr_items, write_film
from test_dicom_node import SCORE, history



@functools.cache
def dcmtk(tool: str) -> str | None:
    """The dcmtk program ``tool`` on PATH. pynetdicom installs Python apps of the same names
    (``storescu``, ``storescp``, ``echoscu``) into the venv, so each candidate must say it is dcmtk."""
    for folder in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
        candidate = Path(folder) / tool
        if not os.access(candidate, os.X_OK):
            continue
        try:
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=10)
        except OSError:
            continue
        if "dcmtk" in (version.stdout + version.stderr).lower():
            return str(candidate)
    return None


pytestmark = pytest.mark.skipif(
    not all(dcmtk(tool) for tool in ("storescu", "storescp", "echoscu")),
    reason="dcmtk (storescu/storescp/echoscu) is not installed: apt-get install dcmtk",
)

from pydicom import dcmread  # noqa: E402
from pydicom.uid import BasicTextSRStorage, JPEGLSLossless, RLELossless, SecondaryCaptureImageStorage  # noqa: E402


def echoscu(port: int, called: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [dcmtk("echoscu"), "-aet", "XRAY1", "-aec", called, "127.0.0.1", str(port)],
        capture_output=True, text=True, timeout=30,
    )


@pytest.fixture
def storescp(tmp_path):
    """dcmtk's storescp as the forwarding destination, writing what it receives to a folder."""
    folder = tmp_path / "pacs"
    folder.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "PACS", "-od", str(folder), "+xa", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while echoscu(port, "PACS").returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"storescp did not start: {process.communicate()[1]}")
        time.sleep(0.1)
    yield port, folder
    process.terminate()
    process.wait(timeout=10)


def test_dcmtk_unit_sends_films_and_dcmtk_pacs_gets_an_sr_per_film(tmp_path, storescp):
    pacs_port, pacs_folder = storescp
    node = Node(tmp_path, "--forward", f"PACS@127.0.0.1:{pacs_port}", "--forward-retry-max", "1")
    try:
        assert echoscu(node.port, "PNEUMOSCAN").returncode == 0

        films = [make_film(200 + i) for i in range(8)]
        films[1].compress(RLELossless)  # compressed films, decoded by the [dicom] decoders
        films[2].compress(JPEGLSLossless)
        paths = [write_film(ds, tmp_path / f"film{i}.dcm") for i, ds in enumerate(films)]
        # As a unit configured for each syntax would propose it (storescu offers one compressed
        # syntax at a time, with the uncompressed ones).
        batches = [(["--propose-uncompr"], [p for i, p in enumerate(paths) if i not in (1, 2)]),
                   (["--propose-rle"], [paths[1]]), (["--propose-jls-lossless"], [paths[2]])]
        for options, files in batches:
            sent = subprocess.run(
                [dcmtk("storescu"), *options, "-aet", "XRAY1", "-aec", "PNEUMOSCAN", "127.0.0.1", str(node.port), *map(str, files)],
                capture_output=True, text=True, timeout=60,
            )
            assert sent.returncode == 0, sent.stderr

        rows = node.wait_for(lambda: len(settled_rows(node.db)) == len(films) and settled_rows(node.db), "a row per film")
        assert all(row["status"] == "done" for row in rows)
        syntaxes = {row["extra"]["dicom"]["transfer_syntax"] for row in rows}
        assert {"RLE Lossless", "JPEG-LS Lossless Image Compression"} <= syntaxes
        assert len(history(node.db)) == len(films)

        def received():
            found = [dcmread(path) for path in pacs_folder.iterdir() if path.is_file()]
            return found if len(found) >= 2 * len(films) else None

        objects = node.wait_for(received, "an SR and a Secondary Capture per film at storescp")
        reports = [ds for ds in objects if ds.SOPClassUID == BasicTextSRStorage]
        assert len(reports) == len(films)
        assert len([ds for ds in objects if ds.SOPClassUID == SecondaryCaptureImageStorage]) == len(films)
        by_film = {row["extra"]["dicom"]["sop_instance_uid"]: row for row in rows}
        for sr in reports:
            film_uid = sr.ContentSequence[-1].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            row = by_film[film_uid]
            assert sr.StudyInstanceUID == row["extra"]["dicom"]["study_instance_uid"]
            assert int(sr_items(sr)[SCORE]) == row["score"]
    finally:
        assert node.stop() == 0


def test_dcmtk_association_from_an_ae_title_not_allowed_is_rejected(tmp_path):
    node = Node(tmp_path, "--allow-ae", "XRAY9")
    try:
        refused = echoscu(node.port, "PNEUMOSCAN")
        assert refused.returncode != 0
        assert "Rejected" in refused.stderr + refused.stdout or "rejected" in (refused.stderr + refused.stdout).lower()
    finally:
        node.stop()
