"""``pneumoscan dicom-node`` as a real process on 127.0.0.1, driven by pynetdicom's own SCU.

Films go in over several associations at once; the audit log (read as ``history`` reads it), the
store under ``--data`` and a receiving SCP (the PACS) are checked; then the node is killed with
SIGKILL mid-stream and restarted, and its destination is down while films arrive.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dicom_node_helpers import (
    PATIENT,
    Node,
    Receiver,
    log_rows,
    make_film,
    send,
    send_parallel,
    settled_rows,
    sr_items,
    write_film,
)
from ports import free_port
from pydicom import dcmread
from pydicom.uid import (
    BasicTextSRStorage,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
    generate_uid,
)

SCORE = "Pneumonia screening score (0-100)"


def history(db: Path) -> list[dict]:
    """``pneumoscan history --format json``, as a person would export the log."""
    out = subprocess.run(
        [sys.executable, "-m", "edge_app", "history", "--db", str(db), "--format", "json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def echo(port: int, ae_title: str = "XRAY1") -> int | None:
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.network_timeout = 10
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="PNEUMOSCAN")
    if not assoc.is_established:
        return None
    try:
        return assoc.send_c_echo().Status
    finally:
        assoc.release()


def garbled_file(path: Path) -> Path:
    """A DICOM file whose meta header is fine and whose dataset is not: after its SOP class and
    instance UIDs comes a sequence whose item claims more bytes than follow (a cut transfer)."""
    import struct

    ds = make_film(7)
    write_film(ds, path)
    data = path.read_bytes()
    meta_end = 144 + int.from_bytes(data[140:144], "little")

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        value += b"\0" * (len(value) % 2)
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    body = element(0x0008, 0x0016, b"UI", str(ds.SOPClassUID).encode())
    body += element(0x0008, 0x0018, b"UI", str(ds.SOPInstanceUID).encode())
    body += struct.pack("<HH", 0x0040, 0x0275) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
    body += b"\xfe\xff\x00\xe0" + struct.pack("<I", 5000) + b"\x10\x00\x10\x00PN"
    path.write_bytes(data[:meta_end] + body)
    return path


def test_receives_screens_records_and_forwards_fifty_films(tmp_path):
    pacs = Receiver()
    node = Node(tmp_path, "--forward", pacs.address, "--forward-retry-max", "1")
    try:
        assert echo(node.port) == 0x0000
        study = generate_uid()
        films = [make_film(i, study_uid=study if i < 5 else None) for i in range(50)]
        statuses = send_parallel(node.port, films, associations=4)
        assert statuses == [0x0000] * 50

        rows = node.wait_for(lambda: len(settled_rows(node.db)) == 50 and settled_rows(node.db), "50 rows")
        assert all(row["status"] == "done" for row in rows)
        by_sop = {row["extra"]["dicom"]["sop_instance_uid"]: row for row in rows}
        assert set(by_sop) == {str(ds.SOPInstanceUID) for ds in films}
        for ds in films:
            dicom = by_sop[str(ds.SOPInstanceUID)]["extra"]["dicom"]
            assert dicom["study_instance_uid"] == ds.StudyInstanceUID
            assert dicom["series_instance_uid"] == ds.SeriesInstanceUID
            assert (dicom["modality"], dicom["body_part"], dicom["view_position"]) == ("DX", "CHEST", "PA")
            assert dicom["calling_ae"].startswith("XRAY")
        # No patient identifier in the record without --with-ids.
        assert not any(value in node.db.read_bytes().decode("latin-1") for value in PATIENT.values())
        assert not any(value in node.output() for value in PATIENT.values())

        # Each film stored under the SHA-256 of its dataset, which is what the row is keyed by.
        stored = sorted((node.data / "films").glob("??/*.dcm"))
        assert len(stored) == 50
        for path in stored:
            data = path.read_bytes()
            meta_end = 144 + int.from_bytes(data[140:144], "little")
            assert hashlib.sha256(data[meta_end:]).hexdigest() == path.stem
            assert dcmread(path, stop_before_pixels=True).file_meta.SourceApplicationEntityTitle.startswith("XRAY")
        assert {row["sha256"] for row in rows} == {path.stem for path in stored}
        assert {dcmread(path).SOPInstanceUID for path in stored} == set(by_sop)
        assert not list((node.data / "tmp").iterdir())

        # The PACS: one SR and one Secondary Capture per film, in the film's study, same score.
        node.wait_for(lambda: len(pacs.received) >= 100, "100 forwarded objects")
        reports = pacs.of_class(BasicTextSRStorage)
        captures = pacs.of_class(SecondaryCaptureImageStorage)
        assert len(reports) == len(captures) == 50
        by_study_film = {}
        for sr in reports:
            film_uid = sr.ContentSequence[-1].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            row = by_sop[film_uid]
            assert sr.StudyInstanceUID == row["extra"]["dicom"]["study_instance_uid"]
            assert int(sr_items(sr)[SCORE]) == row["score"]
            assert sr_items(sr)["Screening label"] == row["label"]
            assert sr.PatientID == PATIENT["PatientID"]  # filed under the film's patient in the PACS
            by_study_film[film_uid] = sr
        assert len(by_study_film) == 50
        assert {sc.StudyInstanceUID for sc in captures} == {ds.StudyInstanceUID for ds in films}
        assert all(sc.BurnedInAnnotation == "YES" and "NOT A DIAGNOSIS" in sc.ImageComments for sc in captures)
        assert len(list((node.data / "outbox" / "sent").iterdir())) == 100

        # The same film sent again is acknowledged and not screened twice.
        assert send(node.port, films[:3]) == [0x0000] * 3
        assert echo(node.port) == 0x0000
        node.wait_for(lambda: node.output().count("already screened") >= 3, "three skips")
        assert len(log_rows(node.db)) == 50

        listed = history(node.db)
        assert len(listed) == 50
        assert {entry["dicom"]["sop_instance_uid"] for entry in listed} == set(by_sop)
    finally:
        assert node.stop() == 0
        pacs.stop()


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_refuses_what_is_not_a_frontal_chest_film_and_malformed_datasets(tmp_path, monkeypatch):
    node = Node(tmp_path, "--with-ids")
    try:
        lateral = make_film(1, view="LL")
        skull = make_film(2, body_part="SKULL")
        odd = make_film(3, body_part="Jane Doe")  # free text in a code field is never quoted
        no_pixels = make_film(4)
        del no_pixels.PixelData
        truncated = make_film(5)
        truncated.PixelData = truncated.PixelData[:1000]
        statuses = send(node.port, [lateral, skull, odd, no_pixels, truncated])
        assert statuses[:3] == [0x0000] * 3  # stored: refusing to screen is not refusing to store
        assert statuses[3] == 0xA900 and statuses[4] == 0xC000

        garbled = garbled_file(tmp_path / "garbled.dcm")
        from pynetdicom import AE, _config

        monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the bytes as they are

        ae = AE(ae_title="XRAY1")
        ae.add_requested_context(DigitalXRayImageStorageForPresentation)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="PNEUMOSCAN")
        assert assoc.is_established
        status = assoc.send_c_store(garbled)
        assoc.release()
        assert status.Status == 0xC000

        # Still running, still screening, every image SOP class it takes.
        good = make_film(6)
        cr = make_film(8, sop_class=ComputedRadiographyImageStorage)
        processing = make_film(9, sop_class=DigitalXRayImageStorageForProcessing)
        capture = make_film(10, sop_class=SecondaryCaptureImageStorage)
        assert send(node.port, [good, cr, processing, capture]) == [0x0000] * 4
        rows = node.wait_for(lambda: len(settled_rows(node.db)) == 7 and settled_rows(node.db), "7 rows")
        by_sop = {row["extra"]["dicom"]["sop_instance_uid"]: row for row in rows}
        assert by_sop[lateral.SOPInstanceUID]["error"] == "not a frontal chest radiograph by its header: lateral view (left lateral)"
        assert by_sop[skull.SOPInstanceUID]["error"].endswith("body part examined is not the chest (SKULL)")
        assert by_sop[odd.SOPInstanceUID]["error"].endswith("(an unrecognised value)")
        assert by_sop[good.SOPInstanceUID]["status"] == "done"
        assert by_sop[cr.SOPInstanceUID]["status"] == by_sop[capture.SOPInstanceUID]["status"] == "done"
        assert "a DX image 'for processing'" in by_sop[processing.SOPInstanceUID]["error"]
        assert by_sop[cr.SOPInstanceUID]["extra"]["dicom"]["sop_class"] == "CR"
        dicom = by_sop[good.SOPInstanceUID]["extra"]["dicom"]  # --with-ids: in the log, never the output
        assert (dicom["patient_id"], dicom["accession_number"]) == (PATIENT["PatientID"], good.AccessionNumber)
        assert len(list((node.data / "films").glob("??/*.dcm"))) == 7
        failures = [line for line in node.output().splitlines() if "refused  C-STORE" in line]
        assert len(failures) == 3  # one line per malformed dataset
        assert "Traceback" not in node.output()
        assert not any(value in node.output() for value in (*PATIENT.values(), "Jane Doe"))
    finally:
        assert node.stop() == 0


def test_allow_lists_refuse_unknown_ae_titles_and_peers(tmp_path):
    node = Node(tmp_path, "--allow-ae", "XRAY1", "--allow-peer", "127.0.0.0/8")
    try:
        assert echo(node.port, "XRAY1") == 0x0000
        assert echo(node.port, "INTRUDER") is None
        assert send(node.port, [make_film(1)], ae_title="XRAY1") == [0x0000]
        with pytest.raises(ConnectionError):
            send(node.port, [make_film(2)], ae_title="INTRUDER")
        node.wait_for(lambda: len(settled_rows(node.db)) == 1, "one row")
        assert "association from AE 'INTRUDER'" in node.output()
    finally:
        node.stop()
    (tmp_path / "peer").mkdir()
    other = Node(tmp_path / "peer", "--allow-peer", "10.0.0.0/8")  # loopback is not in it
    try:
        assert echo(other.port) is None
        other.wait_for(lambda: "connection from 127.0.0.1: not in --allow-peer" in other.output(), "the refusal")
        assert not list((other.data / "films").glob("??/*.dcm"))
    finally:
        other.stop()


def test_kill_9_mid_stream_loses_and_repeats_nothing_and_a_down_destination_catches_up(tmp_path):
    """SIGKILL while four associations stream films and the PACS is down; restart with the PACS
    up: every acknowledged film is stored and screened exactly once, and each gets its SR."""
    pacs_port = free_port()  # nobody listens on it yet: the PACS is down
    forward = f"PACS@127.0.0.1:{pacs_port}"
    node = Node(tmp_path, "--forward", forward, "--forward-retry-max", "0.5")
    films = [make_film(100 + i) for i in range(40)]
    acknowledged: list = []
    lock = threading.Lock()

    def stream(chunk):
        from pynetdicom import AE

        ae = AE(ae_title="XRAY1")
        ae.dimse_timeout = ae.network_timeout = 3  # notice the killed node quickly
        ae.add_requested_context(chunk[0].SOPClassUID, chunk[0].file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="PNEUMOSCAN")
        if not assoc.is_established:
            return
        for ds in chunk:
            status = assoc.send_c_store(ds)
            if getattr(status, "Status", None) == 0x0000:
                with lock:
                    acknowledged.append(ds)
            elif not assoc.is_established:
                return
        assoc.release()

    threads = [threading.Thread(target=stream, args=(films[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    # Receiving goes on while the destination is down; kill once some films are screened.
    node.wait_for(lambda: len(settled_rows(node.db)) >= 5, "5 rows")
    assert "retrying" in node.output()
    node.kill()
    for thread in threads:
        thread.join()
    assert 5 <= len(acknowledged)

    pacs = Receiver(port=pacs_port)
    again = Node(tmp_path, "--forward", forward, "--forward-retry-max", "0.5")
    try:
        acked = {str(ds.SOPInstanceUID) for ds in acknowledged}
        stored_files = list((again.data / "films").glob("??/*.dcm"))  # nothing arrives any more
        again.wait_for(lambda: len(settled_rows(again.db)) == len(stored_files), "every stored film screened")
        rows = log_rows(again.db)
        shas = [row["sha256"] for row in rows]
        assert len(shas) == len(set(shas))  # once each
        assert all(row["status"] == "done" for row in rows)
        stored = {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (again.data / "films").glob("??/*.dcm")}
        assert acked <= stored
        assert {row["extra"]["dicom"]["sop_instance_uid"] for row in rows} == stored
        # Unsent results from before the crash, and the new ones, reach the PACS once it is up.
        again.wait_for(lambda: len(pacs.of_class(BasicTextSRStorage)) >= len(rows), "an SR per film")
        scores = {row["extra"]["dicom"]["sop_instance_uid"]: row["score"] for row in rows}
        for sr in pacs.of_class(BasicTextSRStorage):
            film_uid = sr.ContentSequence[-1].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            assert int(sr_items(sr)[SCORE]) == scores[film_uid]
        assert {
            sr.ContentSequence[-1].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for sr in pacs.of_class(BasicTextSRStorage)
        } == set(scores)
    finally:
        assert again.stop() == 0
        pacs.stop()


def test_decides_with_the_site_profile_as_watch_does(tmp_path):
    """A site's own threshold (``pneumoscan calibrate``) decides the node's results too, and the
    SR the PACS gets states that threshold."""
    from typer.testing import CliRunner

    from conftest import write_dataset
    from dicom_node_helpers import TINY_MODEL
    from edge_app.cli import app

    labelled = write_dataset(tmp_path / "labelled", per_class=20, size=(96, 128, 160)) / "train"
    site = tmp_path / "site.json"
    made = CliRunner().invoke(app, ["calibrate", str(labelled), "--out", str(site), "--model", str(TINY_MODEL), "--sensitivity", "0.8"])
    assert made.exit_code == 0, made.output
    threshold = json.loads(site.read_text())["threshold"]

    pacs = Receiver()
    node = Node(tmp_path, "--site", str(site), "--forward", pacs.address, "--forward-retry-max", "0.5")
    try:
        assert f"threshold {threshold:g} (site profile" in node.output()
        assert send(node.port, [make_film(300), make_film(301)]) == [0x0000] * 2
        rows = node.wait_for(lambda: len(settled_rows(node.db)) == 2 and settled_rows(node.db), "2 rows")
        assert all(row["threshold"] == pytest.approx(threshold) for row in rows)
        assert {entry["threshold_source"] for entry in history(node.db)} == {"site"}
        node.wait_for(lambda: len(pacs.of_class(BasicTextSRStorage)) == 2, "2 SRs")
        for sr in pacs.of_class(BasicTextSRStorage):
            assert float(sr_items(sr)["Decision threshold"]) == pytest.approx(threshold, abs=1e-5)
    finally:
        assert node.stop() == 0
        pacs.stop()
