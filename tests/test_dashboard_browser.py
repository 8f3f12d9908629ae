"""The dashboard in a real browser (headless Chromium from Debian's packages, via selenium).

One test, to pay for Chromium's start once: the page of a run that is still writing renders
its charts with data, they change after new events are appended (server-sent events), every
tab draws, and a run whose task texts are markup and scripts shows them literally with
nothing executed. Screenshots go to a temporary folder; with OPENENDED_UPDATE_SCREENSHOTS=1 they
replace the ones in docs/img/ that docs/dashboard.md and the README show.
Skipped, with the reason, when chromium or chromedriver is absent (bash scripts/setup_browser.sh).
"""

import os
import pathlib
import shutil
import tempfile

import pytest

from openended.dashboard.synthetic import LiveRun
from openended.tasks import Box, TextSpace

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHOTS = (
    ROOT / "docs" / "img"
    if os.environ.get("OPENENDED_UPDATE_SCREENSHOTS") == "1"
    else pathlib.Path(tempfile.gettempdir()) / f"openended-screenshots-{os.getpid()}"
)
XSS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    "<b>bold?</b> & <i>markup</i>",
    "collect wood",
    "place table",
]
BOX_RUN = "stump_alpgmm__stump_tracks__alp_gmm__s0"
TEXT_RUN = "xss_lp__crafter_text__lp__s0"


def _browser_paths() -> tuple[str, str]:
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip("headless Chromium not installed (chromium + chromium-driver): run bash scripts/setup_browser.sh")
    return chrome, driver


@pytest.fixture(scope="module")
def browser():
    chrome, driver_path = _browser_paths()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.binary_location = chrome
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout: float = 15.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def _points(driver, div: str) -> str:
    return f"const e = document.getElementById('{div}'); return e && e.dataset.points ? +e.dataset.points : 0;"


def _open(driver, base: str, fragment: str, ready_div: str) -> float:
    driver.get(f"{base}#{fragment}")
    return _wait(driver, _points(driver, ready_div).replace("return e &&", "return e && e.dataset.points > 0 &&"))


def test_live_run_in_a_real_browser(browser, tmp_path):
    from openended.dashboard.server import DashboardServer

    box = LiveRun(
        tmp_path / BOX_RUN,
        Box([0, 0], [3, 6], names=["stump_height", "spacing"]),
        teacher="alp_gmm",
        family="stump_tracks",
        students=("alice", "bob"),
        iterations=60,
        batch=64,
        evaluation_every=5,
        teacher_config={"fit_rate": 100, "refit_executor": "inline"},
    )
    box.advance(30)  # still running: more iterations are appended below
    text = LiveRun(
        tmp_path / TEXT_RUN, TextSpace(seed_tasks=XSS), teacher="lp", iterations=20, teacher_config={"update_every": 2}
    )
    text.advance(20)
    text.finish()
    SHOTS.mkdir(parents=True, exist_ok=True)
    d = browser
    with DashboardServer(tmp_path, "127.0.0.1", 0) as server:
        base = f"http://127.0.0.1:{server.port}/"
        d.get(base + "#/")
        _wait(d, "return document.querySelectorAll('table.grid tbody tr').length === 2")
        d.save_screenshot(str(SHOTS / "dashboard-runs.png"))

        # live: the density chart has data, then grows when the run appends events
        before = _open(d, base, f"/run/{BOX_RUN}/curriculum", "sampling-plot")
        assert before == 30 * 64 * 2
        d.save_screenshot(str(SHOTS / "dashboard-curriculum.png"))
        box.advance(3)
        _wait(d, _points(d, "sampling-plot").replace("return e &&", f"return e && +e.dataset.points > {before} &&"), 10)
        assert "following live" in d.find_element("id", "sampling-window").text

        d.set_window_size(1400, 1300)  # the tabs below have two rows of charts
        for tab, div, shot in (
            ("teacher", "teacher-plot", "dashboard-teacher.png"),
            ("learning", "heldout-plot", "dashboard-learning.png"),
            ("system", "rates-plot", "dashboard-system.png"),
        ):
            _open(d, base, f"/run/{BOX_RUN}/{tab}", div)
            d.save_screenshot(str(SHOTS / shot))
        d.set_window_size(1400, 900)

        # untrusted task text: shown literally everywhere, never run
        cells = "return [...document.querySelectorAll('table.grid td.text')].map((e) => e.textContent);"
        ticks = "return [...document.querySelectorAll('#sampling-plot svg text')].map((e) => e.textContent).join(' ');"
        _open(d, base, f"/run/{TEXT_RUN}/curriculum", "sampling-plot")
        _wait(d, f"const c = (() => {{ {cells} }})(); return {XSS!r}.every((x) => c.includes(x));")
        tick_text = d.execute_script(ticks)
        assert "<b>bold?</b> & <i>markup</i>" in tick_text and "<script>window.__xss=1</script>" in tick_text
        d.save_screenshot(str(SHOTS / "dashboard-untrusted-text.png"))
        _open(d, base, f"/run/{TEXT_RUN}/teacher", "teacher-plot")
        _wait(d, f"const c = (() => {{ {cells} }})(); return {XSS!r}.every((x) => c.includes(x));")
        assert d.execute_script("return window.__xss === undefined")
        assert not d.find_elements("css selector", "img, #app script, table.grid b, table.grid i")
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # no CSP violation, no script error
    box.finish()
