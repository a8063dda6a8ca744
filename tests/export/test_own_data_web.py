"""The web page of a model trained on an image folder (any size, 1 or 3 channels): in headless Chromium the page
prepares a drawing as the model file's image spec says, to the pixel of the Python path, and predicts what
NumPy predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_test_models import varied_drawings

from NeuralNetworks import export, serving
from NeuralNetworks.data import images, preprocessing
from NeuralNetworks.nn import layers, models

DRAWINGS = 60
BROWSER_PARITY = 1e-4


def image_model(height: int, width: int, channels: int) -> models.Sequential:
    model = models.Sequential(name=f"own{height}x{width}x{channels}", seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=(height, width, channels)))
    model.add(layers.Conv2D(4, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    model.labels = {0: "a", 1: "b", 2: "c"}
    model.preprocessing = preprocessing.image_spec(height, width, channels, True)
    return model


@pytest.mark.browser
@pytest.mark.parametrize("shape", [(20, 30, 1), (36, 36, 3)], ids=["20x30-grey", "36x36-rgb"])
def test_the_page_prepares_and_predicts_drawings_for_any_image_size(shape, tmp_path, open_folder):
    model = image_model(*shape)
    path = model.save(tmp_path / "own.npz")
    served = serving.load_model(path)
    page = open_folder(export.to_web(models.load(path), tmp_path / "web"))
    manifest = json.loads((tmp_path / "web" / "model.json").read_text())
    assert manifest["preprocessing"] == model.preprocessing and manifest["input_shape"] == list(shape)
    drawings = [d for d in varied_drawings(DRAWINGS, seed=4) if sum(len(s) for s in d) >= 2]
    script = """([drawings, spec]) => JSON.parse(drawings).map((strokes) => {
        const pixels = window.nn.preprocess(strokes, spec);
        return [String.fromCharCode(...pixels), Array.from(window.nn.predict(pixels))]; })"""
    results = page.evaluate(script, [json.dumps(drawings), model.preprocessing])
    ours = np.array([np.frombuffer(text.encode("latin-1"), np.uint8) for text, _ in results]).astype(int)
    python = np.array([served.preprocess(strokes=d).reshape(-1) for d in drawings]).astype(int)
    assert ours.shape == python.shape == (len(drawings), int(np.prod(shape)))
    difference = np.abs(ours - python)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    probabilities = np.array([scores for _, scores in results])
    expected = model.predict(python.reshape(-1, *shape).astype(np.float32))
    np.testing.assert_allclose(probabilities, expected, atol=BROWSER_PARITY)
    assert page.errors == [] and page.outside_requests == []


def test_serving_prepares_uploads_strokes_and_pixels_for_an_image_model(tmp_path):
    model = image_model(20, 30, 3)
    served = serving.load_model(model.save(tmp_path / "own.npz"))
    strokes = [[(0, 0), (10, 10), (20, 0)]]
    sample = served.preprocess(strokes=strokes)
    assert sample.shape == (20, 30, 3) and (sample[..., 0] == sample[..., 1]).all()
    assert served.top_k(sample)[0][0] in "abc"
    upload = np.full((40, 60, 3), 250, np.uint8)
    upload[10:30, 20:40] = 0
    prepared = served.preprocess(image=upload)
    assert prepared.shape == (20, 30, 3) and prepared[10, 15, 0] == 255  # dark ink inverted to white
    assert served.preprocess(pixels=np.zeros((20, 30, 3))).shape == (20, 30, 3)
    with pytest.raises(ValueError, match=r"`pixels` must be an array of shape \(20, 30, 3\)"):
        served.preprocess(pixels=np.zeros((28, 28)))
    assert sum(served.scores(sample).values()) == pytest.approx(1, abs=1e-5)
    bitmap = images.render_strokes(strokes)
    assert bitmap.shape == (28, 28)


def test_a_model_of_colour_images_without_a_recorded_spec_is_served_by_a_plain_resize(tmp_path):
    model = image_model(16, 16, 3)
    model.preprocessing = None
    served = serving.load_model(model.save(tmp_path / "plain.npz"))
    assert served.spec == preprocessing.image_spec(16, 16, 3, False)
    assert served.preprocess(image=np.zeros((32, 32, 3), np.uint8)).shape == (16, 16, 3)
    manifest = json.loads((export.to_web(models.load(tmp_path / "plain.npz"), tmp_path / "web") / "model.json")
                          .read_text())
    assert manifest["preprocessing"] == served.spec
