"""The static web page: the folder it writes, and in headless Chromium from file:// with every request outside
the folder blocked: probabilities equal NumPy's on real drawings, the JavaScript preprocessing equals the Python
one, and a house drawn with the mouse is recognised."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from export_test_models import every_layer_model, images_for, real_images, shipped_models, varied_drawings

from browser_support import draw
from NeuralNetworks import export
from NeuralNetworks.cli import main
from NeuralNetworks.data import images
from NeuralNetworks.nn import activations, layers, models

BROWSER_PARITY = 1e-4  # largest allowed difference between the page's and NumPy's probabilities
DRAWINGS = 300  # generated stroke drawings whose preprocessing is compared


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name, model)``: the model's page folder, written once per module."""
    folders = {}

    def export_once(name, model):
        if name not in folders:
            folders[name] = export.to_web(model, tmp_path_factory.mktemp(f"web-{name}"))
        return folders[name]

    return export_once


def small_classifier(input_shape=(28, 28)) -> models.Sequential:
    model = models.Sequential(name="small", seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=input_shape))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    return model


# -- the folder -------------------------------------------------------------------------------------------------
def test_the_folder_has_the_page_its_scripts_and_the_weights_in_two_forms(tmp_path):
    model = small_classifier()
    model.labels = {0: "a", 1: "b", 2: "c"}
    folder = export.to_web(model, tmp_path / "page")
    assert sorted(path.name for path in folder.iterdir()) == ["index.html", "model.bin", "model.js", "model.json",
                                                               "static"]
    assert {"app.js", "nn.js", "nn-conv.js", "strokes.js", "style.css"} <= {path.name for path in (folder / "static").iterdir()}
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["labels"] == ["a", "b", "c"] and manifest["preprocessing"] == "quickdraw"
    assert [layer["kind"] for layer in manifest["layers"]] == ["Rescaling", "Flatten", "Dense"]
    weights = (folder / "model.bin").read_bytes()
    kernel = manifest["layers"][2]["weights"]["kernel"]
    start, count = kernel["offset"], math.prod(kernel["shape"])
    np.testing.assert_array_equal(np.frombuffer(weights, "<f4", count, start).reshape(kernel["shape"]),
                                  model.layers[2].params["kernel"])
    script = (folder / "model.js").read_text()
    assert base64.b64decode(script.split('"')[-2]) == weights  # model.js carries model.bin's very bytes
    page = (folder / "index.html").read_text()
    assert '<script src="model.js" defer></script>' in page and "<!--" not in page
    for reference in ("http:", "https:", "//cdn", 'src="/', 'href="/'):
        assert reference not in page  # everything is loaded relative to the folder


class Cube(activations.ActivationFunction):
    name = "cube"

    def __call__(self, x):
        return x ** 3


def test_models_the_page_cannot_feed_or_run_are_refused_by_name(tmp_path):
    with pytest.raises(export.ExportError, match=r"28x28 images .* expects input shape \(10,\)"):
        export.to_web(models.Sequential.from_sizes((10, 3)), tmp_path / "page")
    model = models.Sequential()
    model.add(layers.Flatten(input_shape=(28, 28)))
    model.add(layers.Dense(2, activation=Cube(), name="odd"))
    with pytest.raises(export.ExportError, match="'odd'.*cube"):
        export.to_web(model, tmp_path / "page")
    assert not (tmp_path / "page").exists()


def test_cli_writes_the_page(tmp_path, capsys):
    small_classifier().save(tmp_path / "letters.npz", labels=["a", "b", "c"], preprocessing="mnist")
    assert main(["export", "--model", str(tmp_path / "letters.npz"), "--format", "web",
                 "--out", str(tmp_path / "site")]) == 0
    assert str(tmp_path / "site" / "index.html") in capsys.readouterr().out
    manifest = json.loads((tmp_path / "site" / "model.json").read_text())
    assert manifest["preprocessing"] == "mnist" and manifest["name"] == "letters"  # its file's name


# -- in the browser -------------------------------------------------------------------------------------------
def page_probabilities(page, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """``window.nn.predict`` on every image, and the mean milliseconds per prediction."""
    size = math.prod(pixels.shape[1:])
    packed = base64.b64encode(np.asarray(pixels, dtype=np.uint8).tobytes()).decode("ascii")  # fast to hand over
    result = page.evaluate("""([packed, size]) => {
        const bytes = Uint8Array.from(atob(packed), (char) => char.charCodeAt(0));
        const outputs = [];
        const start = performance.now();
        for (let at = 0; at < bytes.length; at += size) outputs.push(window.nn.predict(bytes.subarray(at, at + size)));
        const milliseconds = (performance.now() - start) / outputs.length;
        return [outputs.map((output) => Array.from(output)), milliseconds]; }""", [packed, size])
    return np.array(result[0]), result[1]


@pytest.mark.browser
@pytest.mark.parametrize("path", shipped_models(), ids=lambda path: path.stem)
def test_the_page_predicts_what_numpy_predicts_on_real_drawings(path, exported, open_folder, mnist_dir,
                                                                quickdraw_dir):
    model = models.load(path)
    x = images_for(model, mnist_dir, quickdraw_dir)
    page = open_folder(exported(path.stem, model))
    assert page.evaluate("window.nn.labels") == [model.labels[i] for i in range(len(model.labels))]
    probabilities, milliseconds = page_probabilities(page, x)
    expected = model.predict(x)
    difference = np.abs(probabilities - expected).max()
    print(f"\n{path.stem}: {len(x)} drawings, largest difference {difference:.2e}, {milliseconds:.2f} ms each")
    assert len(x) >= 500 and difference <= BROWSER_PARITY
    assert (probabilities.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert page.outside_requests == [] and page.errors == []


@pytest.mark.browser
def test_the_javascript_forward_pass_handles_every_layer_type(exported, open_folder, quickdraw_dir):
    model = every_layer_model()
    x = real_images(quickdraw_dir, "quickdraw").astype(np.float32)[..., np.newaxis]
    probabilities, _ = page_probabilities(open_folder(exported("every_layer", model)), x)
    np.testing.assert_allclose(probabilities, model.predict(x), atol=BROWSER_PARITY)


@pytest.mark.browser
def test_the_javascript_preprocessing_draws_the_same_pixels_as_python(exported, open_folder):
    page = open_folder(exported("small", small_classifier()))
    drawings = varied_drawings(DRAWINGS)
    widths = np.random.default_rng(1).uniform(4.0, 30.0, DRAWINGS).tolist()
    # JSON text in, one string of pixel bytes out: Playwright is slow to hand over large nested lists
    script = """([drawings, style, widths]) => JSON.parse(drawings).map((strokes, i) => String.fromCharCode(
        ...(widths ? window.nn.renderStrokes(strokes, widths[i]) : window.nn.preprocess(strokes, style)))).join("")"""
    for style, line_widths in (("quickdraw", None), ("mnist", None), ("quickdraw", widths)):
        text = page.evaluate(script, [json.dumps(drawings), style, line_widths])
        ours = np.frombuffer(text.encode("latin-1"), dtype=np.uint8).reshape(len(drawings), -1).astype(int)
        if line_widths:
            python = [images.render_strokes(d, line_width=w) for d, w in zip(drawings, line_widths, strict=True)]
        else:
            python = [images.preprocess_strokes(d, style=style) for d in drawings]
        difference = np.abs(ours - np.array(python, dtype=int).reshape(len(drawings), -1))
        print(f"\n{style}{' (random line widths)' if line_widths else ''}: largest pixel difference "
              f"{difference.max()}, pixels off by more than 1: {(difference > 1).mean():.2%}, "
              f"pixels differing at all: {(difference > 0).mean():.4%}")
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    errors = page.evaluate("""() => [[], [[[1, 2]]], [[[0, 0], [1, NaN]]]].map((strokes) => {
        try { window.nn.preprocess(strokes); return "no error"; } catch (error) { return error.name; } })""")
    assert errors == ["EmptyDrawingError", "EmptyDrawingError", "RangeError"]
    assert page.errors == []


HOUSE = [  # fractions of the drawing board: the walls, the roof, a door
    [(0.3, 0.45), (0.3, 0.8), (0.7, 0.8), (0.7, 0.45), (0.3, 0.45)],
    [(0.25, 0.47), (0.5, 0.2), (0.75, 0.47)],
    [(0.45, 0.8), (0.45, 0.65), (0.55, 0.65), (0.55, 0.8)],
]


@pytest.mark.browser
def test_a_house_drawn_with_the_mouse_on_the_exported_page_is_a_house(exported, open_folder):
    from playwright.sync_api import expect

    doodle_models = [path for path in shipped_models() if "house" in (models.load(path).labels or {}).values()]
    if not doodle_models:
        pytest.skip("no shipped model knows houses")
    page = open_folder(exported(doodle_models[0].stem, models.load(doodle_models[0])))
    assert page.locator("#upload-button").is_hidden()  # uploads need a server; this page has none
    draw(page, HOUSE, steps=8)
    expect(page.locator("#predictions[data-source=page] li")).to_have_count(3)
    assert page.locator("#predictions .label").first.inner_text() == "house"
    assert page.outside_requests == [] and page.errors == []
    assert all(url.startswith("file://") for url in page.requests)


# -- what a name can do ------------------------------------------------------------------------------------------
HOSTILE_NAMES = ["x\nwindow.pwned = 1; //", "x\u2028window.pwned = 2; //", "x\u2029window.pwned = 3; //",
                 "</script><script>window.pwned = 4</script>", "\"); window.pwned = 5; (\"", "x\r\nwindow.pwned = 6"]


@pytest.mark.browser
def test_a_hostile_model_name_stays_a_name_in_the_page(tmp_path, open_folder):
    """A model file's name is written into model.js as escaped JSON: whatever it holds, the page shows it in the
    model picker and runs none of it."""
    for number, name in enumerate(HOSTILE_NAMES):
        folder = export.to_web(small_classifier(), tmp_path / f"page{number}", name=name)
        page = open_folder(folder)
        assert page.evaluate("window.pwned") is None
        assert page.evaluate("Object.keys(window.nn.models)") == [name]
        assert page.locator("#model option").first.get_attribute("value") == name
        assert page.outside_requests == [] and page.errors == []
        page.context.close()


@pytest.mark.browser
def test_the_exported_page_forbids_inline_script_from_file_urls(tmp_path, open_folder):
    """The page's Content-Security-Policy (in its <head>, as a file:// page has no headers) lets the page's own
    scripts run and blocks a script written into the page: an injection that reached the HTML would not run."""
    folder = export.to_web(small_classifier(), tmp_path / "page")
    page_file = folder / "index.html"
    assert 'http-equiv="Content-Security-Policy"' in page_file.read_text()
    page_file.write_text(page_file.read_text().replace(
        "</body>", '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2"></body>'))
    page = open_folder(folder)
    assert page.evaluate("window.nn.labels") == ["0", "1", "2"]  # the page's own scripts ran, model.js too
    assert page.evaluate("window.pwned") is None
    assert any("Content Security Policy" in error for error in page.errors)
    assert page.outside_requests == []


def test_the_export_reads_the_page_from_its_neutral_package_not_the_web_app(tmp_path):
    """export/ never imports the app (FastAPI, uvicorn): both read the page's files from NeuralNetworks.page."""
    import subprocess
    import sys

    code = ("import sys; from NeuralNetworks import export; from NeuralNetworks.export import web; "
            "from NeuralNetworks.nn import layers, models; "
            "m = models.Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(2)]); "
            f"web.to_web(m, {str(tmp_path / 'page')!r}); "
            "print(sorted(n for n in sys.modules if n.startswith(('NeuralNetworks.app', 'fastapi', 'uvicorn'))))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"
