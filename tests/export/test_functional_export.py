"""Exports of functional models: a residual CNN, Concatenate, shared layers, two inputs or outputs, frozen layers
and layers of one's own, in ONNX (onnxruntime) and on the web page (headless Chromium, one page for all)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_test_models import real_images

from browser_support import open_exported
from export_parity import BROWSER_PARITY, ONNX_PARITY, as_list, page_run, randomize, run_onnx
from NeuralNetworks import export
from NeuralNetworks.export.web import WEB_KINDS, manifest_and_weights
from NeuralNetworks.nn import layers, models, presets

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

DIGITS = 200  # real MNIST test digits per comparison


def digits(mnist_dir, count: int = DIGITS) -> np.ndarray:
    return real_images(mnist_dir, "mnist", count).astype(np.float32)[..., np.newaxis]


def residual_model() -> models.Model:
    model = presets.residual_cnn((28, 28, 1), 10, seed=0)
    randomize(model, seed=1)
    model.labels = {index: str(index) for index in range(10)}
    model.preprocessing = "mnist"
    return model


def concatenate_model() -> models.Model:
    """Inception-like: three branches joined on the channels, then two maps joined along the width."""
    x = layers.Input((28, 28, 1))
    h = layers.Rescaling(1 / 255)(x)
    branches = [layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(h),
                layers.Conv2D(3, 1, strides=2, activation="tanh")(h),
                layers.MaxPooling2D(2)(h)]
    joined = layers.Concatenate()(branches)                                     # (14, 14, 8)
    wide = layers.Concatenate(axis=2)([joined, layers.Conv2D(8, 1)(joined)])    # (14, 28, 8)
    pooled = layers.MaxPooling2D(2)(wide)
    flat = layers.Concatenate(axis=1)([layers.Flatten()(pooled), layers.GlobalAveragePooling2D()(pooled)])
    model = models.Model(x, layers.Dense(10, activation="softmax")(flat), name="concatenated", seed=0)
    randomize(model, seed=2)
    return model


class ExportableScale(layers.Layer):
    """The issue's Scale (y = x * s, one learned scale per feature), exported as a BatchNormalization step."""

    export_kind = "BatchNormalization"

    def build(self, input_shape, rng, dtype):
        out = super().build(input_shape, rng, dtype)
        self.add_weight("s", (input_shape[-1],), "ones")
        return out

    def forward(self, x, training=False):
        self._x = x
        return x * self.params["s"]

    def backward(self, grad, input_gradient=True):
        self.grads["s"][...] = (grad * self._x).reshape(-1, grad.shape[-1]).sum(0)
        return grad * self.params["s"] if input_gradient else None

    def export_settings(self):
        s = self.params["s"].astype(np.float32)
        return {"epsilon": 0.0}, {"gamma": s, "beta": np.zeros_like(s), "moving_mean": np.zeros_like(s),
                                  "moving_variance": np.ones_like(s)}


class Cube(layers.Layer):
    """A layer with an ONNX conversion of its own (no web kind); exporting needs no registration."""

    def forward(self, x, training=False):
        return x * x * x

    def export_settings(self):
        return {}, {}

    @staticmethod
    def to_onnx(builder, step):
        x = builder.input(step)
        builder.output(step, builder.op("Mul", [builder.op("Mul", [x, x], step), x], step))


@pytest.fixture
def registered_scale():
    """ExportableScale registered for the test (models.load needs it), then removed: other modules' tests over
    the registry do not meet it."""
    layers.register(ExportableScale)
    yield ExportableScale
    layers.REGISTRY.pop("ExportableScale")


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """The exported page of the residual CNN, opened once from file://; other models run in it via nn.load."""
    folder = export.to_web(residual_model(), tmp_path_factory.mktemp("residual-web"))
    page = open_exported(browser, folder)
    yield page
    page.context.close()


def onnx_difference(model, inputs) -> float:
    theirs = run_onnx(export.to_onnx(model), inputs)
    ours = as_list(model.predict(inputs if len(inputs) > 1 else inputs[0]))
    assert [y.shape for y in theirs] == [y.shape for y in ours]
    return max(float(np.abs(a - b).max()) for a, b in zip(theirs, ours, strict=True))


def page_difference(page, model, inputs) -> float:
    manifest, weights = manifest_and_weights(export.plan(model))
    theirs = page_run(page, manifest, weights, inputs)
    ours = as_list(model.predict(inputs if len(inputs) > 1 else inputs[0]))
    return max(float(np.abs(a.reshape(b.shape) - b).max()) for a, b in zip(theirs, ours, strict=True))


# -- the residual CNN ---------------------------------------------------------------------------------------------
def test_the_residual_cnn_matches_onnxruntime_on_real_digits_with_one_transpose(mnist_dir):
    model, x = residual_model(), digits(mnist_dir)
    proto = export.to_onnx(model)
    types = [node.op_type for node in proto.graph.node]
    assert types.count("Add") == 2 and types.count("Transpose") == 1  # channels first from the stem to the end
    assert [item.name for item in proto.graph.input] == ["input"] and [item.name for item in proto.graph.output] \
        == ["output"]
    assert onnx_difference(model, [x]) <= ONNX_PARITY
    assert model.predict(x).std(axis=0).mean() > 0.01  # different digits, different outputs


@pytest.mark.browser
def test_the_residual_cnn_page_predicts_what_numpy_predicts_on_real_digits(page, mnist_dir):
    model, x = residual_model(), digits(mnist_dir)
    assert page.evaluate("window.nn.labels") == [str(index) for index in range(10)]
    pixels = json.dumps(x.reshape(len(x), -1).astype(int).tolist())
    theirs = np.array(page.evaluate("(pixels) => JSON.parse(pixels).map((p) => Array.from(window.nn.predict(p)))",
                                    pixels))
    expected = model.predict(x)
    assert np.abs(theirs - expected).max() <= BROWSER_PARITY
    assert (theirs.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert page.errors == [] and page.outside_requests == []


# -- Concatenate, shared layers, several inputs and outputs -------------------------------------------------------
@pytest.mark.browser
def test_concatenate_on_channels_width_and_features_matches_in_onnx_and_on_the_page(page, mnist_dir):
    model, x = concatenate_model(), digits(mnist_dir)
    assert model.predict(x).std(axis=0).mean() > 0.01
    assert onnx_difference(model, [x]) <= ONNX_PARITY
    assert page_difference(page, model, [x]) <= BROWSER_PARITY
    manifest, _ = manifest_and_weights(export.plan(model))
    assert [layer["settings"]["axis"] for layer in manifest["layers"] if layer["kind"] == "Concatenate"] == [2, 1, 0]


@pytest.mark.browser
def test_a_shared_layer_is_exported_once_and_matches(page):
    x = layers.Input((6,))
    shared = layers.Dense(6, activation="tanh", name="shared")
    y = layers.Subtract()([shared(shared(x)), layers.Multiply()([shared(x), x])])
    model = models.Model(x, layers.Average()([y, x, layers.Add()([x, y, y])]), seed=0)
    randomize(model)
    inputs = [np.random.default_rng(3).normal(size=(8, 6)).astype(np.float32)]
    proto = export.to_onnx(model)
    assert sorted(item.name for item in proto.graph.initializer) == ["shared/bias", "shared/kernel"]
    assert onnx_difference(model, inputs) <= ONNX_PARITY
    assert page_difference(page, model, inputs) <= BROWSER_PARITY
    manifest, weights = manifest_and_weights(export.plan(model))
    assert len(weights) == 4 * (36 + 6)  # stored once for its three calls
    assert [layer["output"] for layer in manifest["layers"][:3]] == ["shared", "shared_2", "shared_3"]


@pytest.mark.browser
def test_two_inputs_and_two_outputs_are_named_after_the_model(page, tmp_path):
    left, right = layers.Input((5, 4, 3), name="left"), layers.Input((5, 4, 2), name="right")
    joined = layers.Concatenate()([layers.Conv2D(3, 3, padding="same")(left), right])
    features = layers.GlobalAveragePooling2D()(joined)
    digit = layers.Dense(4, activation="softmax", name="digit")(features)
    big = layers.Dense(1, activation="sigmoid", name="big")(layers.Flatten()(joined))
    model = models.Model([left, right], [digit, big], seed=0)
    randomize(model)
    rng = np.random.default_rng(4)
    inputs = [rng.normal(size=(6, 5, 4, 3)).astype(np.float32), rng.normal(size=(6, 5, 4, 2)).astype(np.float32)]
    proto = export.to_onnx(model, tmp_path / "two.onnx")
    assert [item.name for item in proto.graph.input] == ["left", "right"]
    assert [item.name for item in proto.graph.output] == ["digit", "big"]
    assert onnx_difference(model, inputs) <= ONNX_PARITY
    assert page_difference(page, model, inputs) <= BROWSER_PARITY  # nn.js runs it; the drawing page does not
    with pytest.raises(export.ExportError, match=r"one input and one output; model 'model' has 2 inputs and 2"):
        export.to_web(model, tmp_path / "page")


def test_one_input_with_two_outputs_keeps_the_name_input():
    x = layers.Input((3,))
    hidden = layers.Dense(4, activation="relu")(x)
    model = models.Model(x, [layers.Dense(2, name="a")(hidden), hidden], seed=0)
    proto = export.to_onnx(model)
    assert [item.name for item in proto.graph.input] == ["input"]
    assert [item.name for item in proto.graph.output] == ["a", "dense_1"]  # the hidden layer's name
    inputs = [np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)]
    assert onnx_difference(model, inputs) <= ONNX_PARITY


def test_an_output_that_is_a_model_input_or_given_twice_gets_an_identity():
    x = layers.Input((3,))
    y = layers.Dense(2)(layers.Dropout(0.5)(x))
    model = models.Model(x, [y, y, layers.Dropout(0.1)(x)], seed=0)
    proto = export.to_onnx(model)
    assert [node.op_type for node in proto.graph.node] == ["Gemm", "Identity", "Identity"]
    assert onnx_difference(model, [np.ones((2, 3), np.float32)]) <= ONNX_PARITY


# -- frozen layers and layers of one's own ------------------------------------------------------------------------
@pytest.mark.browser
def test_a_model_with_frozen_layers_trained_saved_and_loaded_matches(page, tmp_path, mnist_dir):
    model = residual_model()
    for layer in model.layers[:8]:  # the stem and the first block's first half, BatchNormalization included
        layer.trainable = False
    x = digits(mnist_dir, 64)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(len(x)) % 10, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "frozen.npz")
    loaded = models.load(tmp_path / "frozen.npz")
    assert [layer.trainable for layer in loaded.layers[:9]] == [False] * 8 + [True]
    assert onnx_difference(loaded, [x]) <= ONNX_PARITY
    assert page_difference(page, loaded, [x]) <= BROWSER_PARITY


@pytest.mark.browser
def test_a_registered_layer_of_ones_own_exports_as_the_kind_it_names(page, tmp_path, registered_scale):
    x = layers.Input((4, 3, 2))
    h = ExportableScale(name="scale")(layers.Conv2D(5, 2, padding="same")(x))
    model = models.Model(x, layers.Dense(3)(layers.Flatten()(ExportableScale()(h))), seed=0)
    randomize(model)
    model.save(tmp_path / "scaled.npz")
    loaded = models.load(tmp_path / "scaled.npz")
    inputs = [np.random.default_rng(6).normal(size=(5, 4, 3, 2)).astype(np.float32)]
    assert [step.kind for step in export.plan(loaded).steps] == ["Conv2D", "BatchNormalization",
                                                                  "BatchNormalization", "Flatten", "Dense"]
    assert onnx_difference(loaded, inputs) <= ONNX_PARITY
    assert page_difference(page, loaded, inputs) <= BROWSER_PARITY


def test_a_layer_with_its_own_onnx_conversion_exports_to_onnx_and_is_refused_by_the_page(tmp_path):
    x = layers.Input((6,))
    model = models.Model(x, Cube(name="cube")(layers.Dense(6)(x)), seed=0)
    inputs = [np.random.default_rng(7).normal(size=(5, 6)).astype(np.float32)]
    assert onnx_difference(model, inputs) <= ONNX_PARITY
    with pytest.raises(export.ExportError, match=r"'cube' \(Cube\) to the web page: its kind 'Cube' is not one"):
        manifest_and_weights(export.plan(model))


def test_a_subclass_that_computes_something_else_is_refused_and_one_that_does_not_exports():
    class Doubled(layers.Dense):
        def forward(self, x, training=False):
            return 2 * super().forward(x, training)

    class Named(layers.Dense):  # same forward: Dense's conversion holds
        pass

    for cls, refused in ((Doubled, True), (Named, False)):
        model = models.Sequential([cls(2, input_shape=(3,), name="d")])
        if refused:
            with pytest.raises(export.ExportError, match=r"'d' \(Doubled\): Doubled overrides the forward of Dense"):
                export.plan(model)
        else:
            assert [step.kind for step in export.plan(model).steps] == ["Dense"]


# -- the manifest ------------------------------------------------------------------------------------------------
def test_a_sequential_is_a_chain_and_keeps_its_names(tmp_path):
    model = models.Sequential.from_sizes((4, 5, 2), seed=0)
    model_plan = export.plan(model)
    assert model_plan.is_chain and [(step.inputs, step.output) for step in model_plan.steps] == \
        [(("input",), "dense_1"), (("dense_1",), "dense_2")]
    assert not export.plan(concatenate_model()).is_chain


@pytest.mark.browser
def test_nn_js_runs_manifests_written_before_the_graph_fields_and_knows_the_exporters_kinds(page):
    assert sorted(page.evaluate("window.nn.kinds")) == sorted(WEB_KINDS)
    model = models.Sequential(seed=0)
    model.add(layers.Conv2D(3, 3, input_shape=(5, 5, 2), activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(4, activation="softmax"))
    randomize(model)
    manifest, weights = manifest_and_weights(export.plan(model))
    for key in ("inputs", "outputs"):
        del manifest[key]
    for layer in manifest["layers"]:
        del layer["inputs"], layer["output"]
    x = np.random.default_rng(8).normal(size=(4, 5, 5, 2)).astype(np.float32)
    theirs = page_run(page, manifest, weights, [x])[0]
    assert np.abs(theirs - model.predict(x)).max() <= BROWSER_PARITY
    broken = json.loads(json.dumps(manifest_and_weights(export.plan(model))[0]))
    broken["layers"][1]["inputs"] = ["nowhere"]
    error = page.evaluate("""([manifest, size]) => { try { window.nn.load(JSON.parse(manifest),
        new ArrayBuffer(size)); return "loaded"; } catch (error) { return error.message; } }""",
                          [json.dumps(broken), len(weights)])
    assert error == "layer flatten_1 reads nowhere, which no earlier layer writes"
