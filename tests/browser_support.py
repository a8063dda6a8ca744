"""What the browser tests share: Debian's Chromium for Playwright, a page kept to its own origin, the mouse, and
for the app's pages a live server and a fresh browser profile.

The app's tests (against a live server) and the web-export tests (a folder opened from file://) both use it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_MISSING = f"{CHROMIUM} is absent (apt-get install chromium)"
WAIT_MS = 15_000
VIEWPORT = {"width": 1100, "height": 820}
SERVER_START_SECONDS = 20
SERVER_STOP_SECONDS = 10

Stroke = Sequence[tuple[float, float]]


def confine(page, routes, allowed_prefix: str) -> None:
    """Abort every request of ``routes`` (the page or its context) whose URL does not start with
    ``allowed_prefix``, recording it in ``page.outside_requests``; record console and page errors in
    ``page.errors`` and every request in ``page.requests``."""
    page.requests, page.outside_requests, page.errors = [], [], []

    def guard(route):
        if route.request.url.startswith(allowed_prefix):
            route.continue_()
        else:
            page.outside_requests.append(route.request.url)
            route.abort()

    routes.route("**/*", guard)
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.set_default_timeout(WAIT_MS)


def open_exported(browser, folder: Path):
    """``folder/index.html`` (a web export) opened from file:// in a fresh context of ``browser``, kept to the
    folder (``confine``), its model loaded. Close it with ``page.context.close()``."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    inside = folder.resolve().as_uri() + "/"
    confine(page, context, inside)
    try:
        page.goto(inside + "index.html")
        page.wait_for_function("() => window.nn && window.nn.labels.length > 0")
    except Exception:
        context.close()
        raise
    return page


def draw(page, strokes: Sequence[Stroke], steps: int) -> None:
    """Drag the mouse through each stroke, points given as fractions of the drawing board (``#pad``), with
    ``steps`` mouse events between two points."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
        page.mouse.move(*at[0])
        page.mouse.down()
        for x, y in at[1:]:
            page.mouse.move(x, y, steps=steps)
        page.mouse.up()


def expect_count(page, selector: str, count: int) -> None:
    """Wait for ``count`` matches (locator assertions work under the page's Content-Security-Policy)."""
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_count(count, timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on 127.0.0.1: its base URL, the server stopped on exit."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app's server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_STOP_SECONDS)


@contextlib.contextmanager
def chromium_page(profile: Path, base_url: str, viewport: dict[str, int] = VIEWPORT) -> Iterator:
    """A page of a fresh Chromium profile (folder ``profile``), kept to ``base_url`` (``confine``); closed on
    exit. Skips where Playwright is not installed."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=viewport)
        page = context.pages[0] if context.pages else context.new_page()
        confine(page, page, base_url)
        try:
            yield page
        finally:
            context.close()
