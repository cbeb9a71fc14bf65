"""The generated leaderboard in a real browser: headless Chromium from ``file://``.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium``
Python package. Skipped only when Chromium itself is not installed.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
    "--hide-scrollbars",
]
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


def _load_helpers() -> Any:
    """tests/report_helpers.py, loaded by path (works whatever pytest's import mode)."""
    path = Path(__file__).with_name("report_helpers.py")
    spec = importlib.util.spec_from_file_location("_report_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aebench.report import build_site

    out = _load_helpers().make_benchmark_dir(tmp_path_factory.mktemp("bench"))
    return build_site(out).parent


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("Chromium is installed but selenium is not: pip install selenium")
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not Path(chromedriver).exists():
        pytest.fail(
            "Chromium is installed but chromedriver is not: apt-get install chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path keeps Selenium Manager from trying to download one
    drv = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _broken_images(driver: Any) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.images)"
        ".filter(function (i) { return !(i.complete && i.naturalWidth > 0); })"
        ".map(function (i) { return i.getAttribute('src'); });"
    )


def _non_local_requests(driver: Any) -> list[str]:
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
        ".filter(function (n) { return !/^(file|data):/.test(n); });"
    )


def _open(driver: Any, page: Path) -> None:
    driver.get_log("browser")  # drop entries from earlier pages
    driver.get(page.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def _viewport(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport (not the window) ``width`` x ``height`` CSS px."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    assert inner == [width, height]


def _sideways_overflow(driver: Any) -> list[str]:
    """The page scrolls sideways when its content is wider than the viewport: say which
    elements stick out (none expected)."""
    return driver.execute_script(
        "var w = document.documentElement.clientWidth;"
        "if (document.documentElement.scrollWidth <= w) return [];"
        "return Array.from(document.querySelectorAll('body *')).filter(function (e) {"
        "  var r = e.getBoundingClientRect(); return r.width && r.right > w + 1; })"
        ".slice(0, 5).map(function (e) { return e.tagName + '.' + e.className; });"
    )


def _broken_links(driver: Any, page: Path) -> list[str]:
    """Links of the page whose target file (or #fragment on this page) does not exist."""
    from urllib.parse import unquote, urlsplit

    hrefs = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]')).map(function (a) {"
        "  return [a.getAttribute('href'), a.href]; });"
    )
    broken = []
    for raw, absolute in hrefs:
        parts = urlsplit(absolute)
        if parts.scheme != "file":
            broken.append(raw)  # nothing may leave the site
            continue
        target = Path(unquote(parts.path))
        if not target.is_file():
            broken.append(raw)
        elif parts.fragment and target == page:
            found = driver.execute_script(
                "return !!document.getElementById(arguments[0])", parts.fragment
            )
            if not found:
                broken.append(raw)
    return broken


def _visible_rows(driver: Any, table_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".filter(function (r) { return !r.hidden; })"
        ".map(function (r) { return r.getAttribute('data-family'); });",
        table_id,
    )


def _visible_headers(driver: Any, table_id: str) -> int:
    return driver.execute_script(
        "var t = document.getElementById(arguments[0]);"
        "return Array.from(t.tHead.rows[1].cells).filter(function (c) {"
        "  return c.getBoundingClientRect().width > 0; }).length;",
        table_id,
    )


def _column(driver: Any, table_id: str, key: str, attr: str = "data-key") -> list[str]:
    """The data-sort values of a metric column (``data-key``) or an option column
    (``attr="data-option"``), in displayed row order."""
    return driver.execute_script(
        "var t = document.getElementById(arguments[0]);"
        "var th = t.querySelector('th[' + arguments[2] + '=\"' + arguments[1] + '\"]');"
        "return Array.from(t.tBodies[0].rows).map(function (r) {"
        "  return r.cells[th.cellIndex].getAttribute('data-sort'); });",
        table_id,
        key,
        attr,
    )


def _numbers(values: list[str]) -> list[float]:
    present = [float(v) for v in values if v]
    assert all(not v for v in values[len(present) :]), "missing values must sort last"
    return present


def test_index_in_browser(driver: Any, site: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _viewport(driver, *VIEWPORTS["desktop"])
    _open(driver, site / "index.html")
    assert driver.title == "aebench leaderboard"
    assert _severe(driver) == []
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) >= 4
    assert _broken_images(driver) == []
    assert _non_local_requests(driver) == []

    # the plugin's HTML name is text, not markup, and no script ran
    assert "evil<script>alert(1)</script>$x^2$" in driver.find_element(By.ID, "ds-mnist").text
    assert driver.execute_script("return document.scripts.length") == 1

    table = "table-mnist"
    before = driver.execute_script(
        "return Array.from(document.getElementById('table-mnist').tBodies[0].rows)"
        ".map(function (r) { return r.getAttribute('data-index'); });"
    )
    mse_before = _column(driver, table, "test_mse")
    driver.find_element(By.CSS_SELECTOR, '.picker input[data-group="reconstruction"]')
    for box in driver.find_elements(By.CSS_SELECTOR, "#ds-mnist .picker input"):
        if not box.is_selected():
            box.click()  # every column shown, to sort by any of them
    header = driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-key="test_mse"]')
    header.click()
    after = driver.execute_script(
        "return Array.from(document.getElementById('table-mnist').tBodies[0].rows)"
        ".map(function (r) { return r.getAttribute('data-index'); });"
    )
    assert after != before, "clicking the MSE header did not reorder the rows"
    assert sorted(after) == sorted(before)
    mse = _numbers(_column(driver, table, "test_mse"))
    assert mse == sorted(mse)
    assert _column(driver, table, "test_mse") != mse_before
    assert header.get_attribute("aria-sort") == "ascending"  # ↓ metric: best first

    header.click()
    mse = _numbers(_column(driver, table, "test_mse"))
    assert mse == sorted(mse, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"

    ssim = driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-key="test_ssim"]')
    ssim.click()  # ↑ metric: best (highest) first
    values = _numbers(_column(driver, table, "test_ssim"))
    assert values == sorted(values, reverse=True)

    # model options are columns too, sorted as numbers
    option = driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-option="latent_dim"]')
    option.click()
    dims = _numbers(_column(driver, table, "latent_dim", "data-option"))
    assert dims == sorted(dims) and len(set(dims)) > 1
    driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-option="beta"]').click()
    assert _numbers(_column(driver, table, "beta", "data-option")) == [0.5, 4.0]
    # a value that does not apply to the model says so on hover
    na = driver.find_elements(By.CSS_SELECTOR, f"#{table} td.na")
    assert len(na) == 3 and {td.text for td in na} == {"—"}  # the AE's KL, NLL, NLL bits/dim
    assert all(
        td.get_attribute("title").startswith("not applicable to this model: it applies to ")
        for td in na
    )
    assert _severe(driver) == []


def test_filters_and_column_groups(driver: Any, site: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _viewport(driver, *VIEWPORTS["desktop"])
    _open(driver, site / "index.html")
    table = "table-mnist"
    everyone = _visible_rows(driver, table)
    assert len(everyone) == 6 and "ae" in everyone
    family = Select(driver.find_element(By.ID, "filter-family"))
    family.select_by_value("ae")
    assert _visible_rows(driver, table) == ["ae"]
    galleries = driver.find_elements(By.CSS_SELECTOR, "#ds-mnist .gallery .grow[data-family]")
    assert [g.is_displayed() for g in galleries].count(True) == 1  # the gallery follows
    family.select_by_value("")
    assert _visible_rows(driver, table) == everyone
    objective = Select(driver.find_element(By.ID, "filter-objective"))
    objective.select_by_value("deterministic")  # the AE's group: the plain AE alone here
    assert _visible_rows(driver, table) == ["ae"]
    objective.select_by_value("")
    assert _visible_rows(driver, table) == everyone
    dataset = Select(driver.find_element(By.ID, "filter-dataset"))
    dataset.select_by_value("fashion-mnist")
    assert not driver.find_element(By.ID, "ds-mnist").is_displayed()
    assert driver.find_element(By.ID, "ds-fashion-mnist").is_displayed()
    dataset.select_by_value("")
    assert driver.find_element(By.ID, "ds-mnist").is_displayed()

    # a column group collapses to its leading columns and expands again
    box = driver.find_element(By.CSS_SELECTOR, '#ds-mnist .picker input[data-group="likelihood"]')
    if not box.is_selected():
        box.click()
    wide = _visible_headers(driver, table)
    bpd = driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-key="test_bpd"]')
    assert bpd.is_displayed()
    box.click()
    assert not box.is_selected() and not bpd.is_displayed()
    assert _visible_headers(driver, table) == wide - 4  # test_recon, test_reg, test_bpd, nll_bpd
    lead = driver.find_element(By.CSS_SELECTOR, f'#{table} th[data-key="test_total"]')
    assert lead.is_displayed()
    box.click()
    assert bpd.is_displayed() and _visible_headers(driver, table) == wide


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pages_fit_the_screen_and_everything_resolves(
    driver: Any, site: Path, tmp_path: Path, viewport: str
) -> None:
    width, height = VIEWPORTS[viewport]
    _viewport(driver, width, height)
    pages = [site / "index.html"] + [
        site / "runs" / f"{n}.html"
        for n in ("mnist-vae-cnn-d16-s0", "mnist-evil-d4-s0", "mnist-vae-mlp-d8-s0")
    ]
    for page in pages:
        _open(driver, page)
        name = page.name
        assert _severe(driver) == [], name
        assert _broken_images(driver) == [], name
        assert _non_local_requests(driver) == [], name
        assert _broken_links(driver, page) == [], name
        assert _sideways_overflow(driver) == [], name
        # every image fits the screen and keeps its aspect ratio
        bad = driver.execute_script(
            "return Array.from(document.images).filter(function (i) {"
            "  var r = i.getBoundingClientRect();"
            "  var ratio = i.naturalWidth / i.naturalHeight;"
            "  return r.right > document.documentElement.clientWidth + 1 ||"
            "    Math.abs(r.width / r.height - ratio) > 0.05 * ratio;"
            "}).map(function (i) { return i.getAttribute('src'); });"
        )
        assert bad == [], (name, bad)

    _open(driver, site / "index.html")
    wraps = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ds-mnist .table-wrap')).map("
        "function (w) { return [w.scrollWidth, w.clientWidth]; });"
    )
    assert wraps
    if viewport == "desktop":  # the leaderboard fits without scrolling sideways at all
        assert all(scroll <= client + 1 for scroll, client in wraps), wraps
        header = driver.execute_script(
            "var r = document.querySelector('#table-mnist thead').getBoundingClientRect();"
            "return [r.width, r.height];"
        )
        assert header[1] < 220, "the header wraps into a tower"
        # comparison plots are shown at their size (2x PNGs at half their pixels)
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.plot img')).map("
            "function (i) { return [i.getBoundingClientRect().width, i.naturalWidth]; });"
        )
        assert sizes and all(abs(2 * shown - natural) <= 2 for shown, natural in sizes), sizes
    else:  # too narrow for the table: it scrolls inside its box, the page does not
        assert all(client <= width for _, client in wraps), wraps

    # the screenshot is the viewport, not blank, and what it shows fits it
    driver.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / f"leaderboard-{viewport}.png"
    assert driver.save_screenshot(str(shot))
    from PIL import Image, ImageStat

    with Image.open(shot) as im:
        assert im.size == (width, height)
        assert ImageStat.Stat(im.convert("L")).stddev[0] > 10  # text and tables drawn
    title = driver.execute_script(
        "var r = document.querySelector('h1').getBoundingClientRect(); return [r.left, r.right];"
    )
    assert title[0] >= 0 and title[1] <= width


def test_run_page_images(driver: Any, site: Path) -> None:
    _viewport(driver, *VIEWPORTS["desktop"])
    _open(driver, site / "runs" / "mnist-vae-cnn-d16-s0.html")
    n_images = driver.execute_script("return document.images.length")
    # grids, two animations, latent plot, KL per dimension, curves, per-class chart
    assert n_images == 10
    linked = driver.execute_script(
        "return Array.from(document.images).filter(function (i) {"
        "  return i.parentNode.tagName === 'A'; }).length;"
    )
    assert linked == n_images
