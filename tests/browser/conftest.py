"""Real-browser fixtures: Debian's chromium through Playwright (never `playwright install`), and the app on
tiny fixture models served in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.server import launch

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; scripts/test.sh installs the Debian chromium package")
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # the test machines are shared and slow at times
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def app(fixture_dirs, tmp_path_factory):
    """(url, models): the app with a 3-member tiny preset as default; shares go to a temp data dir."""
    url, demo, models = launch(fixture_dirs, tmp_path_factory.mktemp("app-data"), max_new_tokens=40)
    yield url, models
    demo.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1500, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()
