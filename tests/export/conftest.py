"""Headless Chromium for the web-export tests (Debian's package, driven by Playwright, as the app's tests do):
one browser per module, a fresh page per use that may load nothing outside the page's own folder."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, CHROMIUM_MISSING, open_exported


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (closed with it: Playwright's sync API allows one running instance)."""
    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_folder(browser):
    """``open_folder(folder)`` opens ``folder/index.html`` from file:// in a fresh context; every request
    outside the folder is aborted and recorded in ``page.outside_requests``, page errors in ``page.errors``."""
    contexts = []

    def open_page(folder: Path):
        page = open_exported(browser, folder)
        contexts.append(page.context)
        return page

    yield open_page
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
