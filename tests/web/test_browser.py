"""Headless Chromium (Debian's chromium and chromium-driver, through selenium) loads every
status page of a live gateway with seeded data at phone and desktop widths: the content is
there, values update in place without a reload, the console stays clean. Screenshots go to
build/test-artifacts/web/."""

import pathlib
import shutil
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from web_harness import free_port, start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "web"
WIDTHS = {"phone": (360, 780), "desktop": (1280, 900)}
#: Page path, its heading, and a text the seeded gateway must show on it.
PAGES = [
    ("/", "Overview", "reader:host"),
    ("/sensors", "Sensors", "seeded_temp"),
    ("/storage", "Storage", "rollup"),
    ("/ingest", "Ingest", "no_equals_sign"),
    ("/tasks", "Tasks", "rollup-1m"),   # the built-in task
    ("/replication", "Replication", "to-cloud"),   # a stream whose upstream is down
    ("/config", "Configuration", "[http]"),
]
#: A refresh must arrive within this many seconds (pages refresh every 5 s).
UPDATE_WAIT_S = 30


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    # A replication stream to a loopback port nothing listens on: an upstream that is down.
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), f"""
[[replication]]
name = "to-cloud"
kind = "influxdb_v2"
url = "http://127.0.0.1:{free_port()}"
org = "o"
bucket = "b"
flush_interval = "1s"
timeout = "1s"
""")
    yield gw
    rc = gw.stop()
    assert rc == 0, gw.log()
    assert "Traceback" not in gw.log()


@pytest.fixture(scope="module")
def seeded(gateway):
    now = time.time_ns()
    lines = []
    for minute in range(60, 0, -1):  # the last hour, one point a minute per series
        t = now - minute * 60 * 10**9
        lines.append(f"seeded_temp,room=lab value={20 + (minute % 7) * 0.5} {t}")
        lines.append(f"seeded_temp,room=hall value={18 + (minute % 5) * 0.3} {t}")
        lines.append(f"seeded_door,room=hall open={'true' if minute % 2 else 'false'} {t}")
    lines.append("no_equals_sign")
    status, _, body = gateway.write("\n".join(lines))
    assert status == 400 and b"line 181" in body, body
    return gateway


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def console_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("path,heading,expected", PAGES, ids=[p[1].lower() for p in PAGES])
def test_page(seeded, browser, path, heading, expected, width):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(*WIDTHS[width])
    browser.get(seeded.url + path)
    assert browser.find_element(By.TAG_NAME, "h1").text == heading
    main = browser.find_element(By.TAG_NAME, "main")
    assert expected in main.text
    # The page refreshes itself from the JSON API: a marker set now survives (no reload) and the
    # refresh counter moves.
    browser.execute_script("window.__noReload = true;")
    WebDriverWait(browser, UPDATE_WAIT_S).until(
        lambda d: int(d.find_element(By.ID, "updated").get_attribute("data-updates")) >= 1)
    assert browser.execute_script("return window.__noReload === true;")
    assert expected in browser.find_element(By.TAG_NAME, "main").text
    # Nothing wider than the screen, and no table that scrolls sideways inside its box.
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    assert overflow <= 0, f"{path} is {overflow} px wider than a {WIDTHS[width][0]} px screen"
    wide = browser.execute_script(
        "return Array.from(document.querySelectorAll('.scroll'))"
        ".filter(e => e.scrollWidth > e.clientWidth).map(e => e.querySelector('tbody').dataset.list);")
    assert wide == [], f"{path}: these tables scroll sideways at {WIDTHS[width][0]} px: {wide}"
    assert not browser.find_elements(By.CSS_SELECTOR, "link[href^='http'], script[src^='http'], img[src^='http']")
    name = path.strip("/") or "overview"
    browser.save_screenshot(str(ARTIFACTS / f"{name}-{width}.png"))
    assert console_errors(browser) == []


def test_values_update_in_place(seeded, browser):
    browser.set_window_size(*WIDTHS["phone"])
    browser.get(seeded.url + "/ingest")
    browser.execute_script("window.__noReload = true;")
    cell = '[data-bind="http.points_written"]'
    before = int(browser.find_element(By.CSS_SELECTOR, cell).text)
    status, _, body = seeded.write(f"seeded_new,room=attic value=1 {time.time_ns()}\nbroken line")
    assert status == 400, body
    WebDriverWait(browser, UPDATE_WAIT_S).until(
        lambda d: int(d.find_element(By.CSS_SELECTOR, cell).text) == before + 1)
    rows = browser.find_elements(By.CSS_SELECTOR, 'tbody[data-list="bad_http_lines"] tr')
    assert any("broken line" in r.text for r in rows)
    browser.get(seeded.url + "/sensors")
    browser.execute_script("window.__noReload = true;")
    assert "attic" in browser.find_element(By.TAG_NAME, "main").text
    seeded.write(f"seeded_new,room=cellar value=2 {time.time_ns()}")
    # a series that appears after the page loaded gets its row from the refresh
    WebDriverWait(browser, UPDATE_WAIT_S).until(
        lambda d: "cellar" in d.find_element(By.TAG_NAME, "main").text)
    assert browser.execute_script("return window.__noReload === true;")
    # the hour's sparklines: a mean per pixel column with a point (the seeds: one a minute)
    # and the min-max band around it
    sparks = browser.find_elements(By.CSS_SELECTOR, 'polyline[data-spark="spark_hour.line"]')
    assert sum(1 for s in sparks if len(s.get_attribute("points").split()) >= 30) >= 2
    bands = browser.find_elements(By.CSS_SELECTOR, 'polygon[data-spark="spark_hour.band"]')
    assert sum(1 for b in bands if len(b.get_attribute("points").split()) >= 60) >= 2
    assert console_errors(browser) == []
