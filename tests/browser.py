"""Headless Chromium for the explorer's browser test: Debian's `chromium` and `chromium-driver`,
driven by selenium (no browser download at install time). Missing, the test is skipped with the
command that installs them, or fails where ALIGNLAB_REQUIRE_BROWSER is set (CI installs them)."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL = "make browser-deps (apt-get install chromium chromium-driver, as root)"


def headless_chromium(width: int = 1400, height: int = 1800):
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        message = f"the browser test needs Debian's chromium and chromium-driver: {INSTALL}"
        if os.environ.get("ALIGNLAB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)
