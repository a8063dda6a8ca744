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
    assert declared == (layer.output_shape, *built)


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
