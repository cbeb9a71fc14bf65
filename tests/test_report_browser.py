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
    "--window-size=1400,1000",
]


def _load_helpers() -> Any:
    """tests/test_report.py, loaded by path (works whatever pytest's import mode)."""
    path = Path(__file__).with_name("test_report.py")
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
    assert len(na) == 3 and {td.text for td in na} == {"—"}
    assert {td.get_attribute("title") for td in na} == {"not applicable to this model"}
    assert _severe(driver) == []

    driver.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "leaderboard.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_run_pages_in_browser(driver: Any, site: Path, tmp_path: Path) -> None:
    for name in ("mnist-vae-cnn-d16-s0", "mnist-evil-d4-s0", "mnist-vae-mlp-d8-s0"):
        _open(driver, site / "runs" / f"{name}.html")
        assert _severe(driver) == [], name
        assert _broken_images(driver) == [], name
        assert _non_local_requests(driver) == [], name
    _open(driver, site / "runs" / "mnist-vae-cnn-d16-s0.html")
    n_images = driver.execute_script("return document.images.length")
    assert n_images == 9  # grids, two animations, latent plot, curves, per-class chart
    shot = tmp_path / "run.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
