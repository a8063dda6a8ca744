"""What the browser tests share: Debian's Chromium for Playwright, a page kept to its own origin, the mouse.

The app's tests (against a live server) and the web-export tests (a folder opened from file://) both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_MISSING = f"{CHROMIUM} is absent (apt-get install chromium)"
WAIT_MS = 15_000
VIEWPORT = {"width": 1100, "height": 820}

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
