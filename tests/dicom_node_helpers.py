"""Helpers for the DICOM node tests: films made here, the node as a real process, a receiving SCP.

The node is started with ``python -m edge_app dicom-node --port 0`` and reports the port it bound
on stderr; films are synthetic chest-like images (conftest.py) in DX/CR datasets made with pydicom.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, synthetic_film

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

TINY_MODEL = REPO / "tests" / "data" / "tiny-int8.tflite"
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "PID-0042", "PatientBirthDate": "20190304"}

#: How long a test waits for the node to do something before it fails.
WAIT_S = 60.0


def make_film(
    seed: int = 0,
    *,
    size: int = 128,  # at this size every seed the tests use passes the tiny model's input gate
    sop_class: str = DigitalXRayImageStorageForPresentation,
    body_part: str | None = "CHEST",
    view: str | None = "PA",
    study_uid: str | None = None,
) -> Dataset:
    """A chest-like DX (or CR) film as a dataset ready to send or save."""
    pixels = synthetic_film(size, seed=seed, opacity=float(seed % 2)).astype(np.uint16) * 16  # 12 bit
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.Modality = "CR" if sop_class == ComputedRadiographyImageStorage else "DX"
    if body_part is not None:
        ds.BodyPartExamined = body_part
    if view is not None:
        ds.ViewPosition = view
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = "20261201", "090000"
    ds.AccessionNumber = f"ACC{seed:05d}"
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def write_film(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def hermetic_env(tmp: Path) -> dict:
    """This environment without the settings a developer's own machine may have (a site profile
    in ~/.config, a default model or log), so the node decides as the test expects."""
    env = {k: v for k, v in os.environ.items() if k not in ("PNEUMOSCAN_SITE", "PNEUMOSCAN_MODEL", "PNEUMOSCAN_DB")}
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    return env


class Node:
    """``pneumoscan dicom-node`` as a child process; its stdout and stderr go to a log file."""

    def __init__(self, tmp: Path, *args: str, model: Path = TINY_MODEL, port: int = 0, env: dict | None = None):
        self.data = tmp / "node"
        self.db = tmp / "log.sqlite"
        self.log_path = tmp / f"node-{time.monotonic_ns()}.log"
        self.args = ["--data", str(self.data), "--db", str(self.db), "--model", str(model), "--port", str(port), *args]
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_app", "dicom-node", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env={**hermetic_env(tmp), **(env or {}), "PYTHONUNBUFFERED": "1"},
        )
        self.port = self._wait_for_port()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            match = re.search(r"listening on [\d.]+:(\d+)", self.output())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"node did not start:\n{self.output()}")

    def wait_for(self, predicate, what: str, timeout: float = WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode} waiting for {what}:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


def send(port: int, datasets, *, ae_title: str = "XRAY1", called: str = "PNEUMOSCAN") -> list[int]:
    """C-STORE ``datasets`` over one association with pynetdicom's SCU; the statuses, in order
    (``None`` where no reply came)."""
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise ConnectionError("association not established")
    statuses = []
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(getattr(status, "Status", None))
    finally:
        assoc.release()
    return statuses


def send_parallel(port: int, datasets, associations: int) -> list[int]:
    """Send ``datasets`` split over ``associations`` concurrent associations; all statuses."""
    chunks = [datasets[i::associations] for i in range(associations)]
    results: list[list[int]] = [[] for _ in chunks]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = send(port, chunks[index], ae_title=f"XRAY{index}")
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(chunks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [status for chunk in results for status in chunk]


class Receiver:
    """A pynetdicom Storage SCP in a thread of the test: the PACS the node forwards to."""

    def __init__(self, ae_title: str = "PACS", port: int = 0, status: int = 0x0000):
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import BasicTextSRStorage, SecondaryCaptureImageStorage

        self.received: list[Dataset] = []
        self.status = status  # what it answers each C-STORE
        self.lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(BasicTextSRStorage)
        ae.add_supported_context(SecondaryCaptureImageStorage)
        self.ae = ae
        self.server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]
        self.ae_title = ae_title

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self.lock:
            self.received.append(ds)
        return self.status

    def of_class(self, sop_class: str) -> list[Dataset]:
        with self.lock:
            return [ds for ds in self.received if ds.SOPClassUID == sop_class]

    def stop(self) -> None:
        self.server.shutdown()

    @property
    def address(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.port}"


def log_rows(db: Path) -> list[dict]:
    """Every row of the audit log (read as ``history`` does)."""
    from edge_app.audit_log import AuditLog

    if not db.exists():
        return []
    with AuditLog(db, readonly=True) as log:
        return log.rows()


def settled_rows(db: Path) -> list[dict]:
    return [row for row in log_rows(db) if row["status"] != "pending"]


def sr_items(sr: Dataset) -> dict[str, str]:
    """The SR's TEXT items by concept name meaning."""
    return {
        item.ConceptNameCodeSequence[0].CodeMeaning: item.TextValue
        for item in sr.ContentSequence
        if item.ValueType == "TEXT"
    }
