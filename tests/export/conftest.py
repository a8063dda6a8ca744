"""Headless Chromium for the web-export tests (Debian's package, driven by Playwright, as the app's tests do):
one browser per module, a fresh page per use that may load nothing outside the page's own folder."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (closed with it: Playwright's sync API allows one running instance)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
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
        context = browser.new_context(viewport={"width": 1100, "height": 820})
        contexts.append(context)
        page = context.new_page()
        inside = folder.resolve().as_uri() + "/"
        page.requests, page.outside_requests, page.errors = [], [], []

        def guard(route):
            if route.request.url.startswith(inside):
                route.continue_()
            else:
                page.outside_requests.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.set_default_timeout(WAIT_MS)
        page.goto(inside + "index.html")
        page.wait_for_function("() => window.nn && window.nn.labels.length > 0")
        return page

    yield open_page
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
