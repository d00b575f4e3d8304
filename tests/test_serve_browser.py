"""``pneumoscan serve`` in a real headless browser (Debian's chromium through Selenium): every page
loads without a console error, a film picked in the form is screened and its result shown, and it
is found on the worklist. Skipped only when chromium or chromedriver is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_helpers import console_errors, film_jpeg, have_chromium, start_server

pytest.importorskip("flask")
pytest.importorskip("waitress")
webdriver = pytest.importorskip("selenium.webdriver")

if not have_chromium():
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from serve_helpers import chromium  # noqa: E402

WAIT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-browser")
    running = start_server(root / "log.sqlite", root / "data")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def visible_image_loaded(driver) -> bool:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.film-frame img'))"
        ".some(i => i.offsetParent !== null && i.complete && i.naturalWidth > 0);"
    )


def test_every_page_loads_without_console_errors(server, browser) -> None:
    for path, title in (("", "Screen"), ("worklist", "Worklist"), ("about", "About")):
        browser.get(server.url + path)
        assert browser.title.startswith(title), browser.title
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert console_errors(browser) == [], path


def test_a_film_picked_in_the_form_is_screened_shown_and_on_the_worklist(server, browser, tmp_path: Path) -> None:
    film = tmp_path / "child-7.jpeg"
    film.write_bytes(film_jpeg(seed=7, size=600, opacity=1.0))
    browser.get(server.url)
    browser.find_element(By.ID, "files").send_keys(str(film))  # picking a file starts screening
    WebDriverWait(browser, WAIT_S).until(EC.url_contains("/result/"))
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert "score" in heading and "/100" in heading
    assert "A screening aid, not a diagnosis" in browser.page_source
    WebDriverWait(browser, WAIT_S).until(visible_image_loaded)
    shown = browser.execute_script("return document.querySelector('.film-heatmap').offsetParent !== null")
    browser.find_element(By.CSS_SELECTOR, "label[for=show-heatmap]").click()  # heatmap off
    assert browser.execute_script("return document.querySelector('.film-plain').offsetParent !== null") == shown
    WebDriverWait(browser, WAIT_S).until(visible_image_loaded)
    assert browser.find_element(By.ID, "print").is_displayed()
    assert console_errors(browser) == []
    result_path = browser.current_url.split(server.url.rstrip("/"), 1)[1]

    browser.find_element(By.LINK_TEXT, "Worklist").click()
    WebDriverWait(browser, WAIT_S).until(EC.title_contains("Worklist"))
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "table.worklist a")]
    assert any(link.endswith(result_path) for link in links), links
    assert console_errors(browser) == []


def test_several_films_at_once_show_progress_then_the_list(server, browser, tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"batch-{i}.jpeg"
        path.write_bytes(film_jpeg(seed=70 + i, size=400))
        paths.append(str(path))
    notes = tmp_path / "notes.jpeg"
    notes.write_text("not a film")
    paths.append(str(notes))
    browser.get(server.url)
    browser.find_element(By.ID, "files").send_keys("\n".join(paths))
    WebDriverWait(browser, WAIT_S).until(EC.url_contains("/screened"))
    lines = browser.find_elements(By.CSS_SELECTOR, ".results .result-line")
    assert [line.find_element(By.CSS_SELECTOR, ".name").text for line in lines] == [Path(p).name for p in paths]
    assert "not an image" in lines[-1].text
    # The one refusal is the API's 422 answer, which the browser reports; nothing else went wrong.
    errors = console_errors(browser)
    assert len(errors) == 1 and "/api/screen" in errors[0] and "422" in errors[0], errors


def test_a_tablet_on_the_network_logs_in_then_screens(tmp_path: Path, browser) -> None:
    import subprocess

    from serve_helpers import run_env, serve_cmd

    data = tmp_path / "data"
    done = subprocess.run(serve_cmd(tmp_path / "log.sqlite", data, "--set-password"), input="ward-tablet-9\n",
                          capture_output=True, text=True, timeout=60, env=run_env())
    assert done.returncode == 0, done.stderr
    server = start_server(tmp_path / "log.sqlite", data, "--host", "0.0.0.0")
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        browser.delete_all_cookies()
        browser.get(url + "worklist")
        WebDriverWait(browser, WAIT_S).until(EC.title_contains("Log in"))
        browser.find_element(By.ID, "password").send_keys("ward-tablet-9")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(browser, WAIT_S).until(EC.title_contains("Worklist"))  # back where it was going
        browser.find_element(By.LINK_TEXT, "Screen").click()
        film = tmp_path / "ward.jpeg"
        film.write_bytes(film_jpeg(seed=90, size=300))
        browser.find_element(By.ID, "files").send_keys(str(film))
        WebDriverWait(browser, WAIT_S).until(EC.url_contains("/result/"))
        assert "score" in browser.find_element(By.TAG_NAME, "h1").text
        assert console_errors(browser) == []
        browser.find_element(By.CSS_SELECTOR, "form.inline button").click()  # log out
        WebDriverWait(browser, WAIT_S).until(EC.title_contains("Log in"))
    finally:
        server.stop()
