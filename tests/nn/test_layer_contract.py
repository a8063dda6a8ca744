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
