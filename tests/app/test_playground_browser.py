"""The playground page in headless Chromium (Debian's package, driven by Playwright) against a real server:
press Play, see the loss fall and the decision regions change; Step, Reset, a setting, the math panel's links,
"Copy as Python"."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_support import CHROMIUM, CHROMIUM_MISSING, chromium_page

SCREENSHOT = Path(os.environ.get("NN_PLAYGROUND_SCREENSHOT", "/tmp/playground.png"))
VIEWPORT = {"width": 1400, "height": 1000}
PLAY_STEPS = 400  # steps to wait for after pressing Play
REGION_CHANGE = 0.05  # the share of the output's pixels that must change colour over those steps

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=CHROMIUM_MISSING)]


@pytest.fixture
def page(base_url, tmp_path):
    """A fresh Chromium page on /playground, its first view drawn; requests leaving 127.0.0.1 are blocked."""
    with chromium_page(tmp_path / "profile", base_url, VIEWPORT) as page:
        page.goto(f"{base_url}/playground")
        page.wait_for_function("() => window.playgroundState && window.playgroundState.view !== null")
        yield page


def regions(page) -> list[int]:
    """The output canvas's pixels, reduced to their red channel."""
    return page.evaluate("""() => {
        const canvas = document.getElementById('regions');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return Array.from({length: data.length / 4}, (_, i) => data[4 * i]); }""")


def shown_number(page, element_id: str) -> float:
    return float(page.text_content(f"#{element_id}").rstrip("%"))


def step_count(page) -> int:
    return int(page.text_content("#step-count"))


def test_play_lowers_the_loss_and_changes_the_regions(page):
    assert step_count(page) == 0
    first_loss, first_regions = shown_number(page, "loss"), regions(page)
    page.click("#play")
    page.wait_for_function(f"() => Number(document.getElementById('step-count').textContent) >= {PLAY_STEPS}")
    page.click("#play")  # pause
    # the script shown is the paused run's, once a step still in flight when Pause was pressed has landed
    page.wait_for_function("() => document.getElementById('python').textContent.includes("
                           "'STEPS = ' + document.getElementById('step-count').textContent + '\\n')")
    steps = step_count(page)
    page.wait_for_timeout(300)
    assert step_count(page) == steps, "the page kept training after Pause"
    assert shown_number(page, "loss") < 0.7 * first_loss
    later = regions(page)
    changed = sum(abs(a - b) > 30 for a, b in zip(first_regions, later, strict=True)) / len(later)
    assert changed > REGION_CHANGE
    assert f"STEPS = {steps}" in page.text_content("#python")
    assert page.evaluate("() => window.playgroundState.history.length") > 10
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert not page.errors and not page.outside_requests


def test_step_reset_and_a_setting(page):
    page.click("#step")
    page.wait_for_function("() => document.getElementById('step-count').textContent === '1'")
    page.click("#step")
    page.wait_for_function("() => document.getElementById('step-count').textContent === '2'")
    first_session = page.evaluate("() => window.playgroundState.session")
    page.click("#reset")
    page.wait_for_function(f"() => window.playgroundState.session !== {first_session!r} && "
                           "window.playgroundState.view && window.playgroundState.view.step === 0")
    assert step_count(page) == 0
    page.click("#add-layer")  # a third hidden layer: a new session with hidden [4, 4, 4]
    page.wait_for_function("() => window.playgroundState.view && window.playgroundState.view.weights.length === 4")
    assert page.evaluate("() => window.playgroundState.info.settings.hidden") == [4, 4, 4]
    page.select_option("#dataset", "regression")
    page.wait_for_function("() => window.playgroundState.info.task === 'regression' && window.playgroundState.view")
    assert page.text_content("#accuracy") == "–"
    assert not page.errors and not page.outside_requests


def test_a_diverging_run_says_what_to_change(page):
    page.select_option("#learning-rate", "10")
    page.select_option("#optimizer", "sgd")
    page.select_option("#activation", "relu")
    page.select_option("#dataset", "regression")
    page.wait_for_function("() => window.playgroundState.info.settings.learning_rate === 10 && "
                           "window.playgroundState.info.settings.dataset === 'regression' && "
                           "window.playgroundState.view")
    page.click("#play")
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "learning_rate" in page.text_content("#status")
    assert page.text_content("#play") == "Play"  # it stopped by itself


def test_an_expired_session_starts_again(page):
    session = page.evaluate("() => window.playgroundState.session")
    page.evaluate(f"() => fetch('api/playground/{session}', {{method: 'DELETE'}})")  # as if it had expired
    page.click("#step")
    page.wait_for_function(f"() => window.playgroundState.session && window.playgroundState.session !== {session!r}"
                           " && window.playgroundState.view && window.playgroundState.view.step === 0")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('started again')")
    assert "Unknown playground session" in page.text_content("#status")
    page.click("#step")
    page.wait_for_function("() => document.getElementById('step-count').textContent === '1'")


def math_links(page) -> list[str]:
    return page.eval_on_selector_all("#math a", "links => links.map(a => a.href)")


def test_every_math_link_points_at_an_existing_anchor(page, base_url):
    links = set(math_links(page))
    assert len(links) >= 10
    assert any("/playground/docs/backpropagation.md#" in link for link in links)
    for select, value in (("activation", "relu"), ("activation", "sigmoid"), ("activation", "linear"),
                          ("optimizer", "sgd"), ("optimizer", "momentum"), ("dataset", "regression")):
        page.select_option(f"#{select}", value)
        page.wait_for_function(f"() => window.playgroundState.info && "
                               f"window.playgroundState.info.settings.{select} === {value!r}")
        links |= set(math_links(page))
    assert any("ReLU.backward" in link for link in links) and any("SGD._update" in link for link in links)
    assert any("MeanSquaredError.gradient" in link for link in links)
    for link in links:
        parts = urlsplit(link)
        response = page.request.get(f"{base_url}{parts.path}")
        assert response.status == 200, link
        assert f'id="{parts.fragment}"' in response.text(), link


def test_copy_as_python_shows_the_script(page):
    page.click("#step")
    page.wait_for_function("() => document.getElementById('step-count').textContent === '1'")
    page.click("#copy-python")
    page.wait_for_function("() => document.getElementById('copy-status').textContent.startsWith('Copied')")
    script = page.text_content("#python")
    assert "STEPS = 1\n" in script and script.rstrip().endswith('print(f"final loss: {train[\'loss\']:.9g}")')
