"""End to end: the page in headless Chromium (Debian's package, driven by Playwright) against a real server."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from browser_support import CHROMIUM, CHROMIUM_MISSING, chromium_page, draw, expect_count

SCREENSHOT = Path(os.environ.get("NN_APP_SCREENSHOT", "/tmp/doodle_app.png"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=CHROMIUM_MISSING),
]


@pytest.fixture
def page(base_url, tmp_path):
    """A fresh Chromium profile and page; any request leaving 127.0.0.1 is blocked and recorded."""
    with chromium_page(tmp_path / "profile", base_url) as page:
        yield page


def circle(steps: int = 40) -> list[tuple[float, float]]:
    return [(0.5 + 0.3 * math.cos(2 * math.pi * i / steps), 0.5 + 0.3 * math.sin(2 * math.pi * i / steps))
            for i in range(steps + 1)]


def preview_ink(page) -> int:
    return page.evaluate("""() => {
        const data = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;
        let total = 0; for (let i = 0; i < data.length; i += 4) total += data[i]; return total; }""")


def open_app(page, base_url: str) -> None:
    page.goto(base_url)
    expect_count(page, "#model option", 2)


def test_drawing_with_the_mouse_shows_predictions_and_the_28x28_preview(page, base_url):
    open_app(page, base_url)
    assert page.locator("#predictions li").count() == 0 and preview_ink(page) == 0
    draw(page, [circle()], steps=3)
    expect_count(page, "#predictions li", 3)
    expect_count(page, "#preview[data-shown]", 1)
    labels = page.locator("#predictions .label").all_inner_texts()
    assert labels[0] in ("apple", "diamond", "fish", "house") and len(set(labels)) == 3
    assert preview_ink(page) > 0
    widths = page.eval_on_selector_all("#predictions .fill", "els => els.map(e => parseFloat(e.style.width))")
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    page.wait_for_timeout(500)  # let the probability bars finish their transition before the screenshot
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("#undo")  # the only stroke is gone: back to the empty state, no guess
    expect_count(page, "#predictions li", 0)
    assert "Draw something" in page.inner_text("#status") and preview_ink(page) == 0

    page.select_option("#model", "digits")
    draw(page, [[(0.5, 0.2), (0.5, 0.8)]], steps=3)
    expect_count(page, "#predictions li", 3)
    assert page.locator("#predictions .label").first.inner_text() in [str(d) for d in range(10)]
    assert "digits" in page.inner_text("#status")
    page.click("#clear")
    expect_count(page, "#predictions li", 0)
    assert page.outside_requests == [] and page.errors == []


def test_a_click_without_a_stroke_asks_to_draw_something_and_uploads_work(page, base_url, tmp_path):
    open_app(page, base_url)
    assert page.eval_on_selector("#pad", "pad => getComputedStyle(pad).touchAction") == "none"
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + 50, box["y"] + 50)  # one point: not a drawing
    page.wait_for_timeout(400)
    assert page.locator("#predictions li").count() == 0 and "Draw something" in page.inner_text("#status")
    upload = tmp_path / "drawing.png"
    image = Image.new("RGB", (240, 240), "white")
    ImageDraw.Draw(image).polygon([(120, 20), (200, 120), (120, 220), (40, 120)], outline="black", width=8)
    image.save(upload)
    page.set_input_files("#upload", str(upload))
    expect_count(page, "#predictions li", 3)
    assert preview_ink(page) > 0
    assert page.errors == []


def test_the_page_predicts_in_the_browser_without_a_request_per_stroke(page, base_url):
    predict_requests = []
    page.on("request", lambda request: "/api/predict" in request.url and predict_requests.append(request.url))
    open_app(page, base_url)
    page.wait_for_function("() => window.nn && Object.keys(window.nn.models).length === 2")
    draw(page, [circle()], steps=3)
    expect_count(page, "#predictions[data-source=page] li", 3)
    assert page.evaluate("window.nn.labels") == ["apple", "diamond", "fish", "house"]
    page.select_option("#model", "digits")
    expect_count(page, "#predictions[data-source=page] li", 3)
    assert page.evaluate("window.nn.labels") == [str(d) for d in range(10)] and "digits" in page.inner_text("#status")
    assert predict_requests == [] and page.outside_requests == [] and page.errors == []


def test_where_the_weights_cannot_load_the_server_predicts(page, base_url):
    page.route("**/model.bin", lambda route: route.abort())
    open_app(page, base_url)
    draw(page, [circle()], steps=3)
    expect_count(page, "#predictions[data-source=server] li", 3)
    assert page.evaluate("Object.keys(window.nn.models).length") == 0
