"""The page's convolution paths and its folding of affine steps, against model.predict in headless Chromium.

nn-conv.js and nn-winograd.js pick a way per Conv2D (Winograd F(7x7) or F(4x4), a zero-skipping sum for narrow
first layers, blocked direct sums), with tiles that stick out of the map and filter, channel and tile counts that
are not multiples of the blocks; nn.js folds a BatchNormalization or Rescaling into the Conv2D or Dense that alone
reads it, which must stay exact at "same" padding's borders (random statistics make a wrong border show)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from export_parity import BROWSER_PARITY, nn_page, page_run, randomize
from NeuralNetworks import export
from NeuralNetworks.export.web import manifest_and_weights
from NeuralNetworks.nn import layers, models

SAMPLES = 6


def sequential(input_shape: tuple[int, ...], *stack: layers.Layer) -> models.Sequential:
    model = models.Sequential(seed=0)
    for layer in stack:
        model.add(layer)
    model.build(input_shape)
    randomize(model, seed=3)
    return model


def pixels(shape: tuple[int, ...], seed: int = 4) -> np.ndarray:
    """Drawing-like input: values 0..255, half of them zero (the zero-skipping paths skip those)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (SAMPLES, *shape)) * (rng.random((SAMPLES, *shape)) < 0.5)
    return x.astype(np.float32)


# (model, the Winograd tile side each Conv2D runs with: 0 for the direct or narrow sums)
CASES = {
    "f7-f4-edges": (lambda: sequential(
        (20, 20, 3),
        layers.Rescaling(1 / 255, offset=-0.5),                  # folded into the first convolution
        layers.Conv2D(9, 3, padding="same", activation="relu"),  # 3 channels: blocked direct, 9 = 8 + 1 filters
        layers.BatchNormalization(),                             # folded, "same" borders
        layers.Conv2D(10, 3, padding="same", activation="relu"),  # F(7x7): 3 x 3 tiles sticking out, 10 filters
        layers.MaxPooling2D(2),
        layers.BatchNormalization(),
        layers.Conv2D(12, 3, padding="same", activation="relu"),  # 10x10 in F(4x4): 3 x 3 tiles sticking out
        layers.BatchNormalization(),                             # folded into Dense through Flatten
        layers.Flatten(),
        layers.Dense(5, activation="softmax")), [0, 7, 4]),
    "f7-valid": (lambda: sequential(
        (13, 20, 8),
        layers.Conv2D(8, 3, padding="same", activation="relu"),  # F(7x7): 2 x 3 tiles, 6 = 4 + 2
        layers.BatchNormalization(),                             # folded into a "valid" convolution
        layers.Conv2D(6, 3, activation="tanh"),                  # 11 x 18
        layers.GlobalAveragePooling2D(),
        layers.BatchNormalization(),                             # folded into Dense directly
        layers.Dense(3, activation="softmax")), [7, 7]),
    "narrow-one-tile": (lambda: sequential(
        (9, 9, 1),
        layers.Rescaling(1 / 255),
        layers.Conv2D(12, 3, strides=2, padding="same", activation="relu"),  # narrow, 12 = 8 + 4 filters
        layers.BatchNormalization(),
        layers.Conv2D(8, 3, activation="relu"),                  # 5x5 -> 3x3: one F(4x4) tile
        layers.MaxPooling2D(2, padding="same"),                  # 3x3 -> 2x2: a last row and column alone
        layers.Flatten(),
        layers.Dense(4, activation="softmax")), [0, 4]),
    "f7-one-tile": (lambda: sequential(
        (7, 7, 16),
        layers.BatchNormalization(),
        layers.Conv2D(20, 3, padding="same", activation="relu"),  # the shipped models' last: one F(7x7) tile
        layers.Flatten(),
        layers.Dense(3, activation="softmax")), [7]),
}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with nn_page(tmp_path_factory.mktemp("nn-convolutions")) as page:
        yield page


@pytest.mark.browser
@pytest.mark.parametrize("case", CASES)
def test_every_convolution_path_and_fold_matches_numpy(page, case):
    build, tiles = CASES[case]
    model = build()
    manifest, weights = manifest_and_weights(export.plan(model))
    convolutions = [layer for layer in manifest["layers"] if layer["kind"] == "Conv2D"]
    assert page.evaluate("(layers) => layers.map((layer) => window.nn.winogradTile(layer))", convolutions) == tiles
    x = pixels(model.input_shape)
    theirs = page_run(page, manifest, weights, [x])[0]
    assert np.abs(theirs - model.predict(x)).max() <= BROWSER_PARITY


@pytest.mark.browser
def test_an_affine_step_read_twice_is_not_folded_and_answers_are_not_reused(page):
    inputs = layers.Input((8, 8, 8))
    normalized = layers.BatchNormalization()(inputs)
    branches = [layers.Conv2D(8, 3, padding="same")(normalized), layers.Conv2D(8, 3, padding="same")(normalized)]
    added = layers.Add()([*branches, normalized])
    model = models.Model(inputs, layers.Dense(3)(layers.Flatten()(added)), seed=0)
    randomize(model, seed=5)
    manifest, weights = manifest_and_weights(export.plan(model))
    x = pixels((8, 8, 8)) / 255
    assert np.abs(page_run(page, manifest, weights, [x])[0] - model.predict(x)).max() <= BROWSER_PARITY
    first, again = page.evaluate("""([manifest, weights]) => {
        const bytes = Uint8Array.from(atob(weights), (char) => char.charCodeAt(0)).buffer;
        const network = window.nn.load(JSON.parse(manifest), bytes);
        const answer = network.run([new Float32Array(512).fill(1)])[0], kept = Array.from(answer);
        network.run([new Float32Array(512).fill(-1)]);
        return [kept, Array.from(answer)]; }""", [json.dumps(manifest),
                                                 base64.b64encode(weights).decode("ascii")])
    assert first == again  # a later call does not write into an answer already given
