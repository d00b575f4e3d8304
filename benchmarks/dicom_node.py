"""Films per second through ``pneumoscan dicom-node``, and what the node holds in memory when idle.

    nice python benchmarks/dicom_node.py --films 40 --associations 2
    nice python benchmarks/dicom_node.py --model tests/data/tiny-int8.tflite --forward

Starts the node as a real process on 127.0.0.1 (fresh ``--data`` and audit log in a temporary
folder), reads its resident memory once it has settled (idle: model loaded, listening), then
sends ``--films`` distinct synthetic 12-bit DX films (1400x1100 unless ``--size``) with
pynetdicom's SCU over ``--associations`` concurrent associations, and times:

- **received**: until the last C-STORE was acknowledged (each film fsynced to disk first);
- **received and screened**: until the last film's row is in the audit log;
- with ``--forward``: until a receiving SCP in this process has every SR and Secondary Capture.

For comparison it then screens the same stored files with :class:`~edge_app.screening.Screener`
in this process (with heatmaps, as the node does), so the last line says what receiving, storing
and the audit log add per film. Synthetic films are screened with the input gate off (the
bundled model's gate refuses them, as it should); the gate costs well under a millisecond.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_env, load_note, pneumoscan_command  # noqa: E402


def make_films(count: int, size: tuple[int, int]):
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

    from edge_app.bench import synthetic_xray

    films = []
    for i in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
        ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "PA"
        ds.PatientName, ds.PatientID = f"Bench^{i}", f"B{i:05d}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.set_pixel_data(synthetic_xray(*size, seed=i).astype(np.uint16) * 16, "MONOCHROME2", 12)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        films.append(ds)
    return films


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settled(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM results WHERE status != 'pending'").fetchone()[0]


def send(port: int, films, associations: int) -> None:
    from pynetdicom import AE

    def run(chunk):
        ae = AE(ae_title="BENCH")
        ae.add_requested_context(chunk[0].SOPClassUID, chunk[0].file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", port, ae_title="PNEUMOSCAN")
        assert assoc.is_established, "association refused"
        for ds in chunk:
            assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()

    threads = [threading.Thread(target=run, args=(films[i::associations],)) for i in range(associations)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def receiver():
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import BasicTextSRStorage, SecondaryCaptureImageStorage

    got = []
    ae = AE(ae_title="PACS")
    ae.add_supported_context(BasicTextSRStorage)
    ae.add_supported_context(SecondaryCaptureImageStorage)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda e: got.append(1) or 0)])
    return server, got


def wait(predicate, what: str, process, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"node stopped or timed out waiting for {what}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the installed one)")
    parser.add_argument("--films", type=int, default=40)
    parser.add_argument("--associations", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(1400, 1100), metavar=("W", "H"))
    parser.add_argument("--forward", action="store_true", help="also forward results to an SCP in this process")
    args = parser.parse_args()

    films = make_films(args.films, tuple(args.size))
    film_mb = len(films[0].PixelData) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db = tmp / "log.sqlite"
        command = [*pneumoscan_command(), "dicom-node", "--port", "0", "--data", str(tmp / "data"), "--db", str(db), "--no-gate"]
        if args.model:
            command += ["--model", str(args.model)]
        server = got = None
        if args.forward:
            server, got = receiver()
            command += ["--forward", f"PACS@127.0.0.1:{server.server_address[1]}"]
        log = open(tmp / "node.log", "w+")
        node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        try:
            port = None
            deadline = time.monotonic() + 120
            while port is None:
                match = re.search(r"listening on [\d.]+:(\d+)", (tmp / "node.log").read_text())
                if match:
                    port = int(match.group(1))
                elif node.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((tmp / "node.log").read_text())
                time.sleep(0.05)
            time.sleep(2.0)
            idle = rss_mb(node.pid)

            start = time.perf_counter()
            send(port, films, args.associations)
            received = time.perf_counter() - start
            wait(lambda: settled(db) >= len(films), "every row", node)
            screened = time.perf_counter() - start
            forwarded = None
            if args.forward:
                wait(lambda: len(got) >= 2 * len(films), "every forwarded object", node)
                forwarded = time.perf_counter() - start
            peak = rss_mb(node.pid, "VmHWM")
        finally:
            node.terminate()
            node.wait(timeout=60)
            if server is not None:
                server.shutdown()

        from edge_app.heatmap import HeatmapWriter
        from edge_app.model_file import load_classifier
        from edge_app.screening import Screener

        classifier = load_classifier(args.model)
        (tmp / "maps").mkdir()
        screener = Screener(classifier, gate=False, heatmaps=HeatmapWriter(tmp / "maps") if classifier.contract.heatmap is not None else None)
        stored = sorted((tmp / "data" / "films").glob("??/*.dcm"))
        screener.screen(str(stored[0]))  # warm up, as the node's first film did
        start = time.perf_counter()
        for path in stored:
            screener.screen(str(path))
        alone = time.perf_counter() - start

    n = len(films)
    print(f"{n} synthetic {args.size[0]}x{args.size[1]} 12-bit DX films ({film_mb:.1f} MB each), "
          f"{args.associations} associations, model {classifier.contract.version}; {load_note()}")
    print(f"node idle RSS (model loaded, listening): {idle:.0f} MB; peak RSS during the run: {peak:.0f} MB")
    print(f"received (acknowledged, fsynced): {n / received:6.1f} films/s  ({received:.2f} s)")
    print(f"received and screened:            {n / screened:6.1f} films/s  ({screened:.2f} s)")
    if forwarded is not None:
        print(f"...and SR + SC at the destination: {n / forwarded:6.1f} films/s  ({forwarded:.2f} s)")
    print(f"screening alone, same files:      {len(stored) / alone:6.1f} films/s  ({alone:.2f} s)")
    print(f"node / screening alone: {screened / alone:.2f}x the time "
          f"({1000 * (screened - alone) / n:+.0f} ms per film for receiving, storing and the audit log)")


if __name__ == "__main__":
    main()
