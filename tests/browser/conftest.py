"""The browser tests: Debian's Chromium (``/usr/bin/chromium``, never a downloaded browser)
driven by Playwright against the real app under waitress on 127.0.0.1 and PostgreSQL, and
axe-core loaded into each page from tests/browser/node_modules (``npm ci`` here; no CDN).

A missing Chromium or axe-core fails these tests: nothing here skips."""

import shutil

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        # root in CI: Chromium's sandbox needs a user namespace it may not get
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def site(serve):
    """The app served over a fresh PostgreSQL database, as a librarian's client of its API."""
    return serve("postgresql")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page_without_js(browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()
