"""Screenshots of every ``pneumoscan serve`` page for docs/serve.md, from a real server and browser.

    python scripts/serve_screenshots.py [--out docs/img] [--model FILE] [--width 1280 --height 800]

Starts the server on loopback with the shipped model (or ``--model``) in a temporary folder,
screens the three sample films installed with pneumoscan (``edge_app/samples``, Kermany et al.,
CC BY 4.0: see its ATTRIBUTION.md; training films of the shipped model), one film drawn here and
one text file through the API, then has Debian's headless chromium photograph the Screen, Result,
Result as printed (print CSS, A4 width), Worklist and About pages at a 10" tablet's 1280x800.
PNGs are reduced to 256 colours, so they stay small in the repository.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from serve_helpers import chromium, have_chromium, run_env, start_server  # noqa: E402


def drawn_film(seed: int, opacity: float, size: int = 1000) -> bytes:
    """A chest-film-like drawing textured enough for the input gate (see tests/conftest.py); not
    a radiograph, so its score says nothing about the model."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 150 + 50 * np.exp(-((x - 0.5) ** 2) / 0.008)
    for cx in (0.3, 0.7):
        img -= 80 * np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    img += 6 * np.sin(y * 70 + 30 * np.abs(x - 0.5))
    img += opacity * 60 * np.exp(-(((x - 0.7) / 0.1) ** 2 + ((y - 0.6) / 0.12) ** 2))
    img += rng.normal(0, 14, img.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def viewport(driver, width: int, height: int, media: str = "") -> None:
    """The page's size exactly (a window's outer size would include the browser's frame)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": media})


def save(driver, target: Path) -> None:
    png = driver.get_screenshot_as_png()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(target, optimize=True)
    print(f"{target}  {target.stat().st_size / 1024:.0f} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    if not have_chromium():
        sys.exit("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    import requests
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = run_env()
        del env["XDG_CONFIG_HOME"]  # About shows the device's real default site-profile path
        server = start_server(root / "log.sqlite", root / "data", model=args.model, env=env)
        driver = chromium(root / "profile", args.width, args.height)
        try:
            http = requests.Session()
            token = http.get(server.url + "api/session").json()["csrf_token"]
            samples = REPO / "edge_app" / "samples"
            films = {path.name: path.read_bytes() for path in sorted(samples.glob("*.jpeg"))}
            films["drawn-film.jpeg"] = drawn_film(3, 1.5)  # the shipped model finds it uncertain
            films["notes.jpeg"] = b"List of today's patients\n"
            links = {}
            for name, content in films.items():
                answer = http.post(server.url + "api/screen", files={"file": (name, content)},
                                   headers={"X-CSRFToken": token})
                links[name] = answer.headers["Content-Location"]
                print(f"{name}: HTTP {answer.status_code} {answer.json()}")
                time.sleep(0.05)

            viewport(driver, args.width, args.height)
            driver.get(server.url)
            save(driver, args.out / "serve-screen.png")
            driver.get(server.url + links["PNEUMONIA-person1000_bacteria_2931.jpeg"].lstrip("/"))
            WebDriverWait(driver, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".film-frame img")))
            time.sleep(0.3)
            save(driver, args.out / "serve-result.png")
            viewport(driver, 794, 1123, "print")  # A4 at 96 dpi
            save(driver, args.out / "serve-print.png")
            viewport(driver, args.width, args.height)
            driver.get(server.url + "worklist")
            save(driver, args.out / "serve-worklist.png")
            driver.get(server.url + "about")
            save(driver, args.out / "serve-about.png")
        finally:
            driver.quit()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
