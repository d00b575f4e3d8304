"""`pneumoscan serve`: start time, idle memory, and upload-to-result time for one 2000-px JPEG.

    python benchmarks/serve.py [--model FILE] [--runs 5] [--uploads 10]

Start time: from launching the process to the first answered ``GET /`` (interpreter start,
imports of Flask/waitress/LiteRT, model load, audit log open, socket bound), median of ``--runs``
fresh processes. Idle memory: the server's resident set (VmRSS) after that first page, and again
after it screened the uploads. Upload to result: a client's ``POST /api/screen`` of a new
2000x2000 JPEG (about 1 MB; a different film each time, so each is really screened and recorded)
until the JSON answer is in, then the result page; the server's own ``latency_ms`` (decode, gate,
model) is shown beside it, so the rest is HTTP, storage, fsynced audit log and heatmap files.
Goals on the reference machine: start <= 1.5 s, idle RSS <= 120 MB. The machine is shared, so
each start is paired with a cold ``pneumoscan info`` (same imports but the web ones, same model
load) run right after it, and the ratio of the two is printed: it moves far less than either.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import clean_env, load_note, measure, pneumoscan_command  # noqa: E402


def drawn_film(seed: int, size: int = 2000) -> bytes:
    """A chest-film-like drawing textured enough for the shipped model's input gate."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 150 + 50 * np.exp(-((x - 0.5) ** 2) / 0.008)
    for cx in (0.3, 0.7):
        img -= 80 * np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    # Grain scaled with the size: a large JPEG is decoded at reduced scale (DCT draft mode), which
    # averages fine noise away, and the gate refuses a film that is too smooth.
    img += 6 * np.sin(y * 70 + 30 * np.abs(x - 0.5)) + rng.normal(0, 12 * size / 1000, img.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(requests, folder: Path, model: Path | None) -> tuple[subprocess.Popen, str, float]:
    """Launch the server on a port picked here; return it, its URL and seconds to the first page."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = pneumoscan_command() + ["serve", "--port", str(port), "--db", str(folder / "log.sqlite"),
                                      "--data", str(folder / "data")]
    if model is not None:
        command += ["--model", str(model)]
    url = f"http://127.0.0.1:{port}/"
    began = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - began
        except requests.ConnectionError:
            time.sleep(0.01)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Default: the model installed with pneumoscan.")
    parser.add_argument("--runs", type=int, default=5, help="Fresh server processes for the start time.")
    parser.add_argument("--uploads", type=int, default=10, help="2000-px films uploaded to one server.")
    args = parser.parse_args()
    import requests

    print(f"machine: {load_note()}")
    print(f"model: {args.model or 'installed'}")
    starts, idle, infos = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            proc, url, seconds = start(requests, Path(tmp) / f"run{run}", args.model)
            starts.append(seconds)
            time.sleep(0.5)  # let it settle: the figure is the server waiting for its first film
            idle.append(rss_mb(proc.pid))
            if run < args.runs - 1:
                stop(proc)
            info = pneumoscan_command() + ["info"] + (["--model", str(args.model)] if args.model else [])
            infos.append(measure(info, env=clean_env())[0])
        films = [drawn_film(seed) for seed in range(args.uploads)]
        session = requests.Session()
        token = session.get(url + "api/session").json()["csrf_token"]
        totals, pages, inside = [], [], []
        try:
            for i, content in enumerate(films):
                began = time.perf_counter()
                answer = session.post(url + "api/screen", files={"file": (f"film-{i}.jpeg", content)},
                                      headers={"X-CSRFToken": token}, timeout=120)
                totals.append(time.perf_counter() - began)
                if answer.status_code != 201:
                    raise SystemExit(f"upload {i}: HTTP {answer.status_code} {answer.text}")
                inside.append(answer.json()["latency_ms"] / 1000)
                began = time.perf_counter()
                session.get(url + answer.headers["Content-Location"].lstrip("/")).raise_for_status()
                pages.append(time.perf_counter() - began)
            busy_rss = rss_mb(proc.pid)
        finally:
            stop(proc)

    def ms(values: list[float]) -> str:
        return f"median {1000 * statistics.median(values):7.1f} ms  (min {1000 * min(values):.1f}, max {1000 * max(values):.1f})"

    print(f"server start to first page   {ms(starts)}  over {len(starts)} processes  (goal <= 1500 ms)")
    print(f"pneumoscan info (cold), same  {ms(infos)}  -> serve start / info start = "
          f"{statistics.median(starts) / statistics.median(infos):.2f}")
    print(f"idle RSS after first page    median {statistics.median(idle):.1f} MB (max {max(idle):.1f})  (goal <= 120 MB)")
    print(f"RSS after {len(films)} uploads          {busy_rss:.1f} MB")
    print(f"2000-px JPEG upload -> JSON  {ms(totals)}  ({len(films[0]) / 1e6:.2f} MB each, {len(films)} films)")
    print(f"  of which screening         {ms(inside)}  (the server's latency_ms: decode, gate, model)")
    print(f"result page after it         {ms(pages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
