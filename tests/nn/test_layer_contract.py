"""The contract every registered layer keeps (Keras' run_layer_test, plus our gradient check): a layer joins
every check here by being registered, with the example its class gives (``Layer.example``)."""

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, layers

LAYERS = sorted(layers.REGISTRY.items())


def built_example(layer_class, dtype="float64"):
    layer, shape = layer_class.example()
    layer.build(shape, np.random.default_rng(0), np.dtype(dtype))
    return layer, shape


@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_config_round_trips(name, layer_class):
    layer, _ = layer_class.example()
    config = layer.get_config()
    assert layer_class.from_config(dict(config)).get_config() == config


@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_declared_shapes_are_what_build_creates(name, layer_class):
    layer, shape = layer_class.example()
    declared = (layer.compute_output_shape(shape), layer.weight_shapes(shape), layer.state_shapes(shape))
    layer.build(shape, np.random.default_rng(0), np.dtype("float32"))
    built = ({k: v.shape for k, v in layer.params.items()}, {k: v.shape for k, v in layer.state.items()})
    if layers.declares_weight_shapes(layer_class):
        assert declared == (layer.output_shape, *built)
    else:  # a layer of one's own that declares nothing: the loader builds it to learn its weights
        assert declared[0] == layer.output_shape


@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_forward_and_backward_shapes(name, layer_class):
    layer, shape = built_example(layer_class)
    rng = np.random.default_rng(1)
    shapes = shape if layer.several_inputs else [shape]
    batch = [rng.standard_normal((3, *part)) for part in shapes]
    output = layer.forward(batch if layer.several_inputs else batch[0], training=True)
    assert output.shape == (3, *layer.output_shape) and output.dtype == np.float64
    grads = layer.backward(np.ones_like(output))
    for part, grad in zip(batch, grads if layer.several_inputs else [grads], strict=True):
        assert grad.shape == part.shape


@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_gradients_match_finite_differences(name, layer_class):
    layer, shape = layer_class.example()
    # Layers that draw random numbers in training (Dropout, augmentation) are the identity at inference: their
    # training gradients are checked by their own tests with a fixed draw.
    result = gradcheck.check_layer(layer, shape, training=not layer.identity_at_inference)
    assert result.passed, str(result)


def test_a_layer_of_ones_own_passes_the_contract_once_registered():
    @layers.register
    class Shift(layers.Layer):
        def build(self, input_shape, rng, dtype):
            out = super().build(input_shape, rng, dtype)
            self.add_weight("b", (input_shape[-1],), "zeros")
            return out

        def forward(self, x, training=False):
            return x + self.params["b"]

        def backward(self, grad_output, input_gradient=True):
            self.grads["b"][...] = grad_output.reshape(-1, grad_output.shape[-1]).sum(0)
            return grad_output

    try:
        test_config_round_trips("Shift", Shift)
        test_declared_shapes_are_what_build_creates("Shift", Shift)
        test_forward_and_backward_shapes("Shift", Shift)
        test_gradients_match_finite_differences("Shift", Shift)
    finally:
        layers.REGISTRY.pop("Shift")


# -- export: every registered layer exports with parity, or is refused by name ----------------------------------
def example_model(layer_class):
    """A model of the layer's example alone (its inputs straight from ``layers.Input``), random weights."""
    from export_parity import randomize
    from NeuralNetworks.nn import models

    layer, shape = layer_class.example()
    inputs = [layers.Input(part) for part in shape] if layer.several_inputs else layers.Input(shape)
    model = models.Model(inputs, layer(inputs), seed=0)
    randomize(model)
    rng = np.random.default_rng(2)
    batch = [rng.normal(size=(5, *tensor.shape)).astype(np.float32)
             for tensor in (inputs if layer.several_inputs else [inputs])]
    return model, batch


def exported_or_refused(model):
    """The model's export plan, or None after checking that the refusal names the layer and its class."""
    from NeuralNetworks import export

    try:
        return export.plan(model)
    except export.ExportError as error:
        layer = model.layers[0]
        assert f"{layer.name!r} ({type(layer).__name__})" in str(error)
        return None


@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_onnx_export_matches_the_layer_or_is_refused_by_name(name, layer_class):
    pytest.importorskip("onnx")
    from export_parity import ONNX_PARITY, run_onnx
    from NeuralNetworks import export

    model, batch = example_model(layer_class)
    if exported_or_refused(model) is None:
        return
    theirs = run_onnx(export.to_onnx(model), batch)
    ours = model.predict(batch if len(batch) > 1 else batch[0])
    assert theirs[0].shape == ours.shape
    assert np.abs(theirs[0] - ours).max() <= ONNX_PARITY * max(1.0, np.abs(ours).max())


@pytest.fixture(scope="module")
def nn_js_page(tmp_path_factory):
    """One Chromium page with nn.js (and its nn-conv.js) alone, for every layer's web parity."""
    from export_parity import nn_page

    with nn_page(tmp_path_factory.mktemp("nn-js")) as page:
        yield page


@pytest.mark.browser
@pytest.mark.parametrize("name, layer_class", LAYERS)
def test_web_page_matches_the_layer_or_is_refused_by_name(name, layer_class, nn_js_page):
    from export_parity import BROWSER_PARITY, page_run
    from NeuralNetworks import export
    from NeuralNetworks.export.web import manifest_and_weights

    model, batch = example_model(layer_class)
    model_plan = exported_or_refused(model)
    if model_plan is None:
        return
    try:
        manifest, weights = manifest_and_weights(model_plan)
    except export.ExportError as error:  # a kind of its own, which nn.js cannot know
        assert f"{model.layers[0].name!r} ({layer_class.__name__})" in str(error)
        return
    theirs = page_run(nn_js_page, manifest, weights, batch)
    ours = model.predict(batch if len(batch) > 1 else batch[0])
    assert np.abs(theirs[0].reshape(ours.shape) - ours).max() <= BROWSER_PARITY * max(1.0, np.abs(ours).max())
    assert nn_js_page.errors == [] and nn_js_page.outside_requests == []


def test_a_registered_layer_without_a_conversion_is_refused_by_name():
    from NeuralNetworks import export
    from NeuralNetworks.export.web import web_model
    from NeuralNetworks.nn import models

    @layers.register
    class Unconverted(layers.Layer):
        def forward(self, x, training=False):
            return x + 1

    try:
        inputs = layers.Input((4,))
        model = models.Model(inputs, Unconverted(name="plus_one")(inputs))
        for exporter in (export.to_onnx, web_model):
            with pytest.raises(export.ExportError, match=r"'plus_one' \(Unconverted\): .*no export conversion"):
                exporter(model)
    finally:
        layers.REGISTRY.pop("Unconverted")
