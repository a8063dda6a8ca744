"""Conv2D's Winograd paths, F(2x2, 3x3) and F(4x4, 3x3), each: the same convolution as the direct form (naive
loop, float32 rounding), gradients against finite differences, odd sizes and both paddings; and which layers
take which."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_convolution import built, naive_conv2d

from NeuralNetworks.nn import gradcheck, layers
from NeuralNetworks.nn.layers import winograd, winograd4

SHAPES = [(6, 6, 3), (7, 5, 2), (5, 8, 4), (4, 4, 1)]  # even and odd sides: tiles sticking out of the output
ALGORITHMS = {"F2x2": winograd, "F4x4": winograd4}
# Largest error relative to the output's scale, float32 Winograd against float64 direct (measured: F(2x2) up to
# 1.5e-6, F(4x4) up to 7.3e-6, whose transforms multiply by up to 8 and add up to 6 terms).
FLOAT32_ERROR = {winograd: 2e-6, winograd4: 1e-5}


@pytest.fixture(params=list(ALGORITHMS))
def everywhere(request, monkeypatch):
    """One Winograd module for every stride-1 3x3 convolution, however small, so that tiny test layers take it."""
    chosen = ALGORITHMS[request.param]
    monkeypatch.setattr(winograd, "MIN_OUTPUT_PIXELS", 0)
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    for module in ALGORITHMS.values():
        monkeypatch.setattr(module, "products", (lambda *_: 0) if module is chosen else (lambda *_: 10**9))
    return chosen


def winograd_forward(layer, x, algorithm):
    y = layer.forward(x, training=True)
    assert layer._tiles is not None and layer._padded_input is None, "the Winograd path did not run"
    assert layer._winograd is algorithm
    return y


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_matches_a_naive_loop(everywhere, padding, shape):
    layer = built(layers.Conv2D(3, 3, padding=padding), shape)
    layer.params["bias"][...] = np.random.default_rng(2).standard_normal(3)
    x = np.random.default_rng(1).standard_normal((2, *shape))
    expected = naive_conv2d(x, layer.params["kernel"], layer.params["bias"], (1, 1), padding)
    np.testing.assert_allclose(winograd_forward(layer, x, everywhere), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)  # inference buffers too


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_gradients_match_finite_differences(everywhere, padding, shape, activation):
    layer = built(layers.Conv2D(2, 3, padding=padding, activation=activation), shape)
    x = np.random.default_rng(3).standard_normal((2, *shape))
    winograd_forward(layer, x, everywhere)
    result = gradcheck.check_layer(layer, shape, x=x)
    assert result.passed, str(result)
    assert set(result.errors) == {"input", "kernel", "bias"}


def test_the_first_layer_skips_its_input_gradient_but_not_its_kernel_gradient(everywhere):
    layer = built(layers.Conv2D(2, 3, padding="same"), (6, 6, 2))
    x = np.random.default_rng(4).standard_normal((2, 6, 6, 2))
    y = winograd_forward(layer, x, everywhere)
    assert layer.backward(np.ones_like(y), input_gradient=False) is None
    kernel_gradient = layer.grads["kernel"].copy()
    winograd_forward(layer, x, everywhere)
    layer.backward(np.ones_like(y))
    np.testing.assert_allclose(kernel_gradient, layer.grads["kernel"], rtol=1e-12)


@pytest.mark.parametrize("shape", [(6, 6, 3), (7, 5, 2)], ids=str)
def test_transforms_in_chunks_of_a_few_images_give_the_same_numbers(everywhere, monkeypatch, shape):
    """Forward and backward take a batch a chunk of images at a time (the last chunk shorter): every chunk size
    gives the forward, the input gradient and the kernel gradient (summed chunk by chunk) of the whole batch at
    once up to float32 rounding (BLAS may round a product's last rows differently when it has fewer rows)."""
    x = np.random.default_rng(6).standard_normal((5, *shape)).astype(np.float32)
    results = []
    for images_per_chunk in (5, 2, 1):
        tile_values = everywhere.POSITIONS * math.prod(everywhere.tiles(*shape[:2])) * 4  # 4 filters > channels
        monkeypatch.setattr(winograd, "CHUNK_VALUES", images_per_chunk * tile_values)
        layer = built(layers.Conv2D(4, 3, padding="same"), shape, np.float32)
        y = winograd_forward(layer, x, everywhere)
        assert layer._winograd_chunk(len(x), everywhere) == images_per_chunk
        grad_x = layer.backward(np.cos(y))
        results.append((y, grad_x, layer.grads["kernel"].copy()))
    for y, grad_x, grad_kernel in results[1:]:
        for ours, whole in zip((y, grad_x, grad_kernel), results[0], strict=True):
            assert np.abs(ours - whole).max() / np.abs(whole).max() < FLOAT32_ERROR[everywhere]


def test_float32_error_against_the_direct_form_is_rounding_only(everywhere):
    """Real sizes in float32: Winograd against the direct product in float64, forward and both gradients."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 14, 14, 64))
    grad = rng.standard_normal((8, 14, 14, 32))
    layer32 = built(layers.Conv2D(32, 3, padding="same"), (14, 14, 64), np.float32)
    layer64 = built(layers.Conv2D(32, 3, padding="same"), (14, 14, 64), np.float64)
    layer64.params["kernel"][...] = layer32.params["kernel"]
    y32 = winograd_forward(layer32, x.astype(np.float32), everywhere)
    grad_x32 = layer32.backward(grad.astype(np.float32))
    with pytest.MonkeyPatch.context() as direct:
        direct.setattr(winograd, "MIN_OUTPUT_PIXELS", 10**9)
        y64 = layer64.forward(x, training=True)
        assert layer64._padded_input is not None
        grad_x64 = layer64.backward(grad)
    for ours, reference in ((y32, y64), (grad_x32, grad_x64), (layer32.grads["kernel"], layer64.grads["kernel"])):
        assert ours.dtype == np.float32
        assert np.abs(ours - reference).max() / np.abs(reference).max() < FLOAT32_ERROR[everywhere]


@pytest.mark.parametrize(("config", "shape", "batch", "expected"), [
    (dict(kernel_size=3, padding="same"), (14, 14, 64), 64, winograd4),  # 576 products against F(2x2)'s 784
    (dict(kernel_size=3), (16, 16, 64), 64, winograd4),                  # 'valid': 14x14 out
    (dict(kernel_size=3, padding="same"), (14, 14, 32), 64, winograd4),
    (dict(kernel_size=3, padding="same"), (7, 7, 64), 64, winograd4),    # 144 against 256 (8x8 either way)
    (dict(kernel_size=3, padding="same"), (2, 2, 64), 256, winograd),    # 16 against 36: one 2x2 tile
    (dict(kernel_size=3, padding="same"), (1, 1, 64), 1024, None),       # im2col: 9 products
    (dict(kernel_size=3, padding="same"), (14, 14, 16), 64, None),       # too few channels to pay
    (dict(kernel_size=3, strides=2, padding="same"), (14, 14, 64), 64, None),
    (dict(kernel_size=5, padding="same"), (14, 14, 64), 64, None),
])
def test_which_layers_take_which(config, shape, batch, expected):
    layer = built(layers.Conv2D(4, **config), shape, np.float32)
    layer.forward(np.zeros((batch, *shape), np.float32), training=True)
    assert layer._winograd is expected
    assert (layer._tiles is not None) is (expected is not None)
    layer.forward(np.zeros((1, *shape), np.float32), training=True)  # one image: too small a batch
    assert layer._tiles is None and layer._winograd is None
