"""Teach end to end: the page in headless Chromium (Playwright) against a real server with the shipped doodles
model as the base: name two classes, draw examples of each with the mouse, train, draw, see the guess."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from browser_support import CHROMIUM, CHROMIUM_MISSING, chromium_page, draw, expect_count, served
from NeuralNetworks.app import registry

SCREENSHOT = Path(os.environ.get("NN_TEACH_SCREENSHOT", "/tmp/teach_app.png"))
BASE = registry.SHIPPED_MODELS["doodles"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=CHROMIUM_MISSING),
    pytest.mark.skipif(not BASE.is_file(), reason=f"{BASE} (the shipped doodles model) is absent"),
]


@pytest.fixture(scope="module")
def base_url():
    """The app (the shipped doodles model only, not conftest's model_files) served by uvicorn in a thread,
    stopped after the module."""
    from NeuralNetworks.app import create_app

    with served(create_app({"doodles": BASE})) as url:
        yield url


@pytest.fixture
def page(base_url, tmp_path):
    with chromium_page(tmp_path / "profile", base_url) as page:
        yield page


def circle(radius: float, steps: int = 36) -> list[tuple[float, float]]:
    return [(0.5 + radius * math.cos(2 * math.pi * i / steps), 0.5 + radius * math.sin(2 * math.pi * i / steps))
            for i in range(steps + 1)]


def line(tilt: float) -> list[tuple[float, float]]:
    return [(0.5 + tilt, 0.15), (0.5 - tilt, 0.85)]


def name_class(page, label: str) -> None:
    page.fill("#class-name", label)
    page.click("#add-class")


def add_examples(page, label: str, drawings, class_index: int) -> None:
    name_class(page, label)
    for number, strokes in enumerate(drawings, start=1):
        draw(page, strokes, steps=2)
        page.click("#add")
        expect_count(page, f"#classes > li:nth-child({class_index}) .thumbs img", number)


def test_teach_two_classes_by_drawing_train_and_see_the_guess(page, base_url):
    page.goto(base_url)
    page.click("#teach-link")  # the main page links to Teach
    page.wait_for_url(f"{base_url}/teach")
    page.wait_for_selector("body[data-session=ready]")
    assert page.is_disabled("#train")

    add_examples(page, "circle", [[circle(r)] for r in (0.25, 0.35, 0.3)], class_index=1)
    add_examples(page, "line", [[line(t)] for t in (0.0, 0.1, -0.1)], class_index=2)
    assert page.locator("#classes .count").all_inner_texts() == ["3 examples", "3 examples"]

    page.click("#train")
    page.wait_for_selector("#downloads:not([hidden])")
    assert "Trained in" in page.inner_text("#train-status")
    assert page.eval_on_selector("#progress-fill", "fill => fill.style.width") == "100%"

    draw(page, [circle(0.28)], steps=2)
    expect_count(page, "#predictions li", 2)  # the top 3 of two classes
    assert page.locator("#predictions .label").first.inner_text() == "circle"
    page.wait_for_timeout(400)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#clear")
    expect_count(page, "#predictions li", 0)
    draw(page, [line(0.05)], steps=2)
    page.wait_for_function("() => document.querySelector('#predictions .label')?.textContent === 'line'")

    href = page.get_attribute("#download-model", "href")
    response = page.request.get(f"{base_url}{href}")
    assert response.ok and response.body()[:2] == b"PK"  # an .npz is a zip
    assert page.outside_requests == [] and page.errors == []


def test_class_names_are_shown_as_text_and_classes_can_be_deleted(page, base_url):
    page.goto(f"{base_url}/teach")
    page.wait_for_selector("body[data-session=ready]")
    name = "<b>b</b><img src=y onerror=z()>"  # as HTML, its onerror would raise (z is not defined)
    add_examples(page, name, [[circle(0.3)]], class_index=1)
    assert page.inner_text("#classes .class-name") == name
    assert page.locator("#classes b, #classes img:not(.thumbs img)").count() == 0
    assert page.locator("#class option").first.inner_text() == name
    page.click("#undo-example")
    expect_count(page, "#classes .thumbs img", 0)
    page.click("#classes .remove")
    expect_count(page, "#classes > li", 0)
    assert page.outside_requests == [] and page.errors == []
