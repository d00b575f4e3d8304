"""``pneumoscan serve`` as a real process on 127.0.0.1, through an HTTP client: upload, result,
worklist and CSV; hostile uploads; 20 at once; the password, sessions and CSRF; the headers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

requests = pytest.importorskip("requests")
pytest.importorskip("flask")
pytest.importorskip("waitress")
pytest.importorskip("flask_wtf")

from conftest import REPO  # noqa: E402
from edge_helpers import jpeg_bytes  # noqa: E402
from serve_helpers import TINY_MODEL, film_jpeg, film_png, noise_bytes, run_env, serve_cmd, start_server  # noqa: E402
from conftest import synthetic_film, write_dataset  # noqa: E402

MAX_UPLOAD_MB = 2


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_app", *args], capture_output=True, text=True,
                          timeout=timeout, env=run_env(), stdin=subprocess.DEVNULL)


def predict_json(path: Path, *extra: str, model: Path | None = TINY_MODEL) -> dict:
    """``pneumoscan predict PATH --format json``'s record for the file."""
    args = ["predict", str(path), "--format", "json", *extra] + (["--model", str(model)] if model else [])
    done = cli(*args)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)[0]


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT sha256, status, path FROM results ORDER BY id").fetchall()


class Client:
    """A browser-like session: cookie jar plus the CSRF token the page would carry."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        self.token = self.http.get(url + "api/session", timeout=10).json()["csrf_token"]

    def get(self, path: str, **kw):
        return self.http.get(self.url + path.lstrip("/"), timeout=30, **kw)

    def screen(self, name: str, content: bytes, token: bool = True):
        headers = {"X-CSRFToken": self.token} if token else {}
        return self.http.post(self.url + "api/screen", files={"file": (name, content)}, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    running = start_server(root / "log.sqlite", root / "data", "--max-upload-mb", str(MAX_UPLOAD_MB))
    yield running
    assert running.stop() == 0, "\n".join(running.stderr)


@pytest.fixture
def client(server) -> Client:
    return Client(server.url)


def test_upload_result_worklist_and_csv(server, client, tmp_path: Path) -> None:
    content = film_jpeg(seed=101, opacity=1.0)
    film = tmp_path / "child-101.jpeg"
    film.write_bytes(content)

    answer = client.screen(film.name, content)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    expected = predict_json(film)
    assert "error" not in expected
    # The same JSON object as `predict --format json`, field for field (the time taken aside).
    assert {k: v for k, v in body.items() if k != "latency_ms"} == {
        k: (film.name if k == "path" else v) for k, v in expected.items() if k != "latency_ms"
    }
    result_url = answer.headers["Content-Location"]
    assert result_url.startswith("/result/")

    page = client.get(result_url)
    assert page.status_code == 200
    assert f"score {body['score']}/100" in page.text
    assert "A screening aid, not a diagnosis" in page.text
    assert body["model_version"] in page.text
    for picture in ("film.jpeg", "heatmap.jpeg"):
        image = client.get(f"{result_url}/{picture}")
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
        assert image.content.startswith(b"\xff\xd8\xff")

    sha = result_url.rsplit("/", 1)[1]
    listing = client.get("worklist")
    assert listing.status_code == 200 and sha in listing.text
    day = client.get("api/worklist", params={"date": date.today().isoformat()}).json()
    assert sha in [r["sha256"] for r in day]
    assert client.get("api/worklist", params={"date": "2001-01-01"}).json() == []

    csv = client.get("worklist.csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    exported = cli("history", "--db", str(server.db), "--since", "today", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    assert csv.text == exported.stdout  # the same rows, the same columns as `pneumoscan history`


def test_same_film_twice_is_recorded_once(server, client) -> None:
    content = film_png(seed=202)
    first = client.screen("a.png", content)
    second = client.screen("renamed.png", content)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.headers["Content-Location"] == second.headers["Content-Location"]
    assert {**first.json(), "path": "x"} == {**second.json(), "path": "x"}  # the recorded result
    sha = first.headers["Content-Location"].rsplit("/", 1)[1]
    assert [r for r in rows(server.db) if r[0] == sha] == [(sha, "done", str(server.data / "films" / f"{sha}.png"))]
    assert list((server.data / "films").glob(f"{sha}.*")) == [server.data / "films" / f"{sha}.png"]


def test_hostile_uploads_get_predicts_reasons_and_the_server_keeps_serving(server, client, tmp_path: Path) -> None:
    full = jpeg_bytes(synthetic_film(256, seed=2))
    cases = {
        "empty.jpeg": b"",
        "notes.jpeg": b"Patient list, not an image\n",
        "truncated.jpeg": full[: len(full) // 2],
        "photo.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        answer = client.screen(name, content)
        assert answer.status_code == 422, (name, answer.text)
        # {"path", "error"}: predict's own line for the same file
        assert answer.json() == {**predict_json(path), "path": name}, name
        assert "\n" not in answer.json()["error"]
        assert client.get("/").status_code == 200

    huge = noise_bytes(MAX_UPLOAD_MB * 1_000_000 + 1)
    answer = client.screen("huge.jpeg", huge)
    assert answer.status_code == 413
    assert answer.json() == {"error": f"upload larger than the limit of {MAX_UPLOAD_MB:g} MB"}
    try:  # far past the cap: waitress refuses it before the app; the connection may just close
        status = client.screen("enormous.jpeg", huge * 3).status_code
    except requests.ConnectionError:
        status = 413
    assert status == 413
    assert not any("huge" in r[2] or "enormous" in r[2] for r in rows(server.db))
    assert list((server.data / "incoming").iterdir()) == []  # nothing half-received left behind

    missing = client.http.post(server.url + "api/screen", data={"x": "1"}, headers={"X-CSRFToken": client.token})
    assert missing.status_code == 400 and "multipart field 'file'" in missing.json()["error"]
    two = client.http.post(server.url + "api/screen", headers={"X-CSRFToken": client.token},
                           files=[("file", ("a.jpeg", film_jpeg(seed=1))), ("file", ("b.jpeg", film_jpeg(seed=2)))])
    assert two.status_code == 400 and "one film per request" in two.json()["error"]
    assert client.get("/").status_code == 200
    refused = client.get("worklist", params={"filter": "refused"}).text
    assert "empty file" in refused and "not an image" in refused


def test_twenty_uploads_at_once_are_each_recorded_once(server) -> None:
    films = [film_jpeg(seed=300 + i, size=140 + i) for i in range(20)]
    twice = films[:3]  # and three of them sent twice, at the same moment

    def send(content: bytes):
        return Client(server.url).screen("film.jpeg", content)

    with ThreadPoolExecutor(max_workers=23) as pool:
        answers = list(pool.map(send, films + twice))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert sorted(a.status_code for a in answers).count(201) == 20
    shas = {a.headers["Content-Location"].rsplit("/", 1)[1] for a in answers}
    assert len(shas) == 20
    recorded = [r for r in rows(server.db) if r[0] in shas]
    assert sorted(r[0] for r in recorded) == sorted(shas)  # one row each
    assert {r[1] for r in recorded} == {"done"}


def test_films_screened_by_watch_appear_in_the_worklist(server, client, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "from-the-xray-unit.jpeg").write_bytes(film_jpeg(seed=404))
    done = cli("watch", str(inbox), "--once", "--interval", "0.1", "--db", str(server.db), "--model", str(TINY_MODEL))
    assert done.returncode == 0, done.stderr
    assert "from-the-xray-unit.jpeg" in client.get("worklist").text
    listed = client.get("api/worklist").json()
    assert any(r["path"].endswith("from-the-xray-unit.jpeg") for r in listed)
    # Sent again through the page: already in the log, so not screened again.
    again = client.screen("same.jpeg", film_jpeg(seed=404))
    assert again.status_code == 200
    assert len([r for r in rows(server.db) if r[2].endswith("from-the-xray-unit.jpeg")]) == 1


def test_csrf_is_enforced_on_every_form_and_upload(server, client) -> None:
    before = len(rows(server.db))
    assert client.screen("x.jpeg", film_jpeg(seed=505), token=False).status_code == 400
    form = client.http.post(server.url + "screen", files={"file": ("x.jpeg", film_jpeg(seed=505))})
    assert form.status_code == 400 and "CSRF token is missing" in form.text
    stranger = requests.post(server.url + "screen", files={"file": ("x.jpeg", film_jpeg(seed=505))},
                             data={"csrf_token": "forged"})
    assert stranger.status_code == 400
    assert requests.post(server.url + "logout").status_code == 400
    assert len(rows(server.db)) == before  # nothing recorded without the token

    ok = client.http.post(server.url + "screen", files={"file": ("x.jpeg", film_jpeg(seed=505))},
                          data={"csrf_token": client.token})
    assert ok.status_code == 200 and "x.jpeg" in ok.text
    assert len(rows(server.db)) == before + 1


def test_security_headers_and_nothing_served_by_path(server, client) -> None:
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "http" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "http://" not in page.text and "https://" not in page.text  # no remote asset at all
    for path in ("static/", "static/%2e%2e/", "static/..%2fcli.py", "result/../../etc/passwd", "result/" + "a" * 64,
                 "result/notahash/film.jpeg", "films/", "data/", "result/%2e%2e%2fpassword/film.jpeg"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "Index of" not in answer.text
    assert client.get("static/pneumoscan.css").status_code == 200


def test_non_loopback_host_needs_a_password_set_beforehand(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused = subprocess.run(serve_cmd(tmp_path / "log.sqlite", data, "--host", "0.0.0.0"),
                             capture_output=True, text=True, timeout=60, env=run_env(), stdin=subprocess.DEVNULL)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--set-password" in lines[0] and "0.0.0.0" in lines[0], refused.stderr
    assert not (tmp_path / "log.sqlite").exists()

    short = subprocess.run(serve_cmd(tmp_path / "log.sqlite", data, "--set-password"), input="short\n",
                           capture_output=True, text=True, timeout=60, env=run_env())
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    done = subprocess.run(serve_cmd(tmp_path / "log.sqlite", data, "--set-password"), input="clinic-pass-1\n",
                          capture_output=True, text=True, timeout=60, env=run_env())
    assert done.returncode == 0, done.stderr
    stored = (data / "password")
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.read_text().startswith("scrypt:") and "clinic-pass-1" not in stored.read_text()

    server = start_server(tmp_path / "log.sqlite", data, "--host", "0.0.0.0")
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        anonymous = requests.Session()
        assert anonymous.get(url, allow_redirects=False).status_code == 302
        assert anonymous.get(url + "worklist", allow_redirects=False).headers["Location"].startswith("/login")
        assert anonymous.get(url + "api/worklist").status_code == 401
        login = anonymous.get(url + "login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        wrong = anonymous.post(url + "login", data={"password": "guess", "csrf_token": token})
        assert wrong.status_code == 401 and "Wrong password" in wrong.text
        right = anonymous.post(url + "login", data={"password": "clinic-pass-1", "csrf_token": token},
                               allow_redirects=False)
        assert right.status_code == 302
        cookie = right.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert anonymous.get(url + "worklist").status_code == 200
        assert anonymous.get(url + "api/worklist").status_code == 200
        script = requests.Session()  # a script logs in with the token from /api/session
        token = script.get(url + "api/session").json()["csrf_token"]
        assert script.post(url + "login", data={"password": "clinic-pass-1", "csrf_token": token}).status_code == 200
        stale = script.post(url + "api/screen", files={"file": ("s.jpeg", film_jpeg(seed=707))},
                            headers={"X-CSRFToken": token})
        assert stale.status_code == 400  # logging in starts a new session: tokens from before are void
        token = script.get(url + "api/session").json()["csrf_token"]
        answer = script.post(url + "api/screen", files={"file": ("s.jpeg", film_jpeg(seed=707))},
                             headers={"X-CSRFToken": token})
        assert answer.status_code == 201, answer.text
    finally:
        assert server.stop() == 0
    # A new password ends the sessions made with the old one.
    again = subprocess.run(serve_cmd(tmp_path / "log.sqlite", data, "--set-password"), input="another-pass-2\n",
                           capture_output=True, text=True, timeout=60, env=run_env())
    assert again.returncode == 0
    server = start_server(tmp_path / "log.sqlite", data)
    try:
        assert anonymous.get(server.url + "worklist", allow_redirects=False).status_code == 302
    finally:
        server.stop()


def test_real_films_get_the_same_probability_as_predict_with_the_shipped_model(tmp_path: Path) -> None:
    films = sorted((REPO / "edge_app" / "samples").glob("*.jpeg"))  # installed with pneumoscan
    assert films
    server = start_server(tmp_path / "log.sqlite", tmp_path / "data", model=None)
    try:
        client = Client(server.url)
        answers = [client.screen(film.name, film.read_bytes()) for film in films]
    finally:
        server.stop()
    done = cli("predict", *map(str, films), "--format", "json")
    assert done.returncode == 0, done.stderr
    for film, answer, expected in zip(films, answers, json.loads(done.stdout)):
        assert answer.status_code == 201, answer.text
        assert answer.json()["probability"] == expected["probability"]
        assert {k: v for k, v in answer.json().items() if k not in ("latency_ms", "path")} == {
            k: v for k, v in expected.items() if k not in ("latency_ms", "path")
        }


def _dicom_film(path: Path, seed: int) -> Path:
    pytest.importorskip("pydicom")
    from test_dicom import make_dataset, save  # the DICOM files test_dicom.py builds, with a patient

    return save(make_dataset(synthetic_film(128, seed=seed), 8), path)


def test_patient_identifiers_stay_on_the_device_without_with_ids(server, client, tmp_path: Path) -> None:
    film = _dicom_film(tmp_path / "study.dcm", seed=606)
    answer = client.screen("study.dcm", film.read_bytes())
    assert answer.status_code == 201, answer.text
    assert answer.json() == {**predict_json(film), "path": "study.dcm", "latency_ms": answer.json()["latency_ms"]}
    assert answer.json()["dicom"]["modality"] == "DX" and "patient_id" not in answer.json()["dicom"]
    # A watcher that was told to record identifiers: the page still does not show them.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _dicom_film(inbox / "IM0001", seed=607)
    done = cli("watch", str(inbox), "--once", "--interval", "0.1", "--db", str(server.db),
               "--model", str(TINY_MODEL), "--with-ids")
    assert done.returncode == 0, done.stderr
    watched = [r for r in client.get("api/worklist").json() if r["path"].endswith("IM0001")]
    assert len(watched) == 1 and watched[0]["dicom"]["modality"] == "DX"
    assert "patient_id" not in watched[0]["dicom"]
    shown = [client.get(p).text for p in ("worklist", "worklist.csv", "api/worklist",
                                          f"result/{watched[0]['sha256']}", answer.headers["Content-Location"])]
    for text in shown:
        assert "PID-0042" not in text and "Doe^Jane" not in text
    recorded = cli("history", "--db", str(server.db), "--format", "csv").stdout
    assert "PID-0042" in recorded  # it is in the log, as watch --with-ids was asked to keep it


def test_with_ids_server_records_and_shows_identifiers(tmp_path: Path) -> None:
    film = _dicom_film(tmp_path / "study.dcm", seed=608)
    server = start_server(tmp_path / "log.sqlite", tmp_path / "data", "--with-ids")
    try:
        client = Client(server.url)
        answer = client.screen("study.dcm", film.read_bytes())
        assert answer.json()["dicom"]["patient_id"] == "PID-0042"
        assert "PID-0042" in client.get(answer.headers["Content-Location"]).text
    finally:
        server.stop()


def test_a_site_profile_decides_and_every_page_says_so(tmp_path: Path) -> None:
    labelled = write_dataset(tmp_path / "labelled", per_class=20, size=(96, 128, 160)) / "train"
    site = tmp_path / "site.json"
    made = cli("calibrate", str(labelled), "--out", str(site), "--model", str(TINY_MODEL), "--sensitivity", "0.8")
    assert made.returncode == 0, made.stderr
    profile = json.loads(site.read_text())
    film = tmp_path / "f.png"
    film.write_bytes(film_png(seed=808))
    server = start_server(tmp_path / "log.sqlite", tmp_path / "data", "--site", str(site))
    try:
        assert any("site profile" in line for line in server.stderr)
        client = Client(server.url)
        answer = client.screen("f.png", film.read_bytes())
        body = answer.json()
        assert body["threshold_source"] == "site" and body["threshold"] == profile["threshold"]
        expected = predict_json(film, "--site", str(site))
        assert {k: v for k, v in body.items() if k not in ("latency_ms", "path")} == {
            k: v for k, v in expected.items() if k not in ("latency_ms", "path")
        }
        page = client.get(answer.headers["Content-Location"]).text
        assert f"site profile {body['site_profile']}" in page
        assert body["site_profile"] in client.get("about").text
    finally:
        server.stop()
    foreign = json.loads(site.read_text())
    foreign.update(model_version="0.1.0+000000000000", weights_sha256="0" * 64)
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    refused = subprocess.run(serve_cmd(tmp_path / "log.sqlite", tmp_path / "data", "--site", str(tmp_path / "foreign.json")),
                             capture_output=True, text=True, timeout=60, env=run_env(), stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "was made for model" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_pattern_model_s_pattern_is_in_the_api_answer_and_on_the_result_page(tmp_path: Path) -> None:
    from edge_helpers import TINY_PATTERN_MODEL, pattern_films

    films = pattern_films(tmp_path)
    running = start_server(tmp_path / "log.sqlite", tmp_path / "data", "--no-gate", model=TINY_PATTERN_MODEL)
    try:
        client = Client(running.url)
        answer = client.screen("bacterial.png", films["bacterial"].read_bytes())
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["label"] == "PNEUMONIA" and body["pattern"] == "bacterial"
        page = client.get(answer.headers["Content-Location"]).text
        assert f"pattern more like bacterial pneumonia ({body['pattern_score']}/100)" in page
        # the Pattern row names the pattern in the model's own words, with its limits
        assert f"more like bacterial pneumonia ({body['pattern_score']}/100): a radiographic pattern only" in page
        assert "not a reason to give or withhold antibiotics" in page
        clear = client.screen("clear.png", films["clear"].read_bytes()).json()
        assert clear["pattern"] is None and clear["pattern_score"] is None
    finally:
        assert running.stop() == 0, "\n".join(running.stderr)


def test_a_film_that_looks_mirrored_is_referred_with_its_caution_or_refused(tmp_path: Path) -> None:
    """The shipped model and two bundled films turned left to right: the viral one scores over
    the threshold, so it is screened and the page says what to check; the normal one is refused."""
    import html

    from PIL import Image

    from edge_app.orientation import MIRROR_CAUTION, MIRRORED

    def mirrored(name: str) -> bytes:
        path = tmp_path / f"mirrored-{name}.png"
        with Image.open(REPO / "edge_app" / "samples" / f"{name}.jpeg") as film:
            film.convert("L").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path)
        return path.read_bytes()

    running = start_server(tmp_path / "log.sqlite", tmp_path / "data", model=None)
    try:
        client = Client(running.url)
        answer = client.screen("viral.png", mirrored("PNEUMONIA-person1000_virus_1681"))
        assert answer.status_code == 201, answer.text
        assert answer.json()["label"] == "PNEUMONIA" and answer.json()["caution"] == MIRROR_CAUTION
        page = html.unescape(client.get(answer.headers["Content-Location"]).text)
        assert f"<th>Check</th><td>{MIRROR_CAUTION}</td>" in page
        refused = client.screen("normal.png", mirrored("NORMAL-IM-0115-0001")).json()
        assert refused["error"].endswith(MIRRORED) and "caution" not in refused
    finally:
        assert running.stop() == 0, "\n".join(running.stderr)
