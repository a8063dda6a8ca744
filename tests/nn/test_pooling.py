"""Pooling layers: forward against a naive loop, gradients, ties, padding semantics, config."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, layers
from NeuralNetworks.nn.layers.windows import output_length, padding_amounts


def naive_pool(x, pool_size, strides, padding, reduce):
    """One window at a time; padded cells are ignored (never the max, not counted in the mean)."""
    n, height, width, channels = x.shape
    (ph, pw), (sh, sw) = pool_size, strides
    oh, ow = output_length(height, ph, sh, padding), output_length(width, pw, sw, padding)
    top, _ = padding_amounts(height, ph, sh, padding)
    left, _ = padding_amounts(width, pw, sw, padding)
    y = np.zeros((n, oh, ow, channels))
    for r in range(oh):
        for c in range(ow):
            rows = slice(max(r * sh - top, 0), min(r * sh - top + ph, height))
            cols = slice(max(c * sw - left, 0), min(c * sw - left + pw, width))
            y[:, r, c, :] = reduce(x[:, rows, cols, :], axis=(1, 2))
    return y


def built(layer, input_shape, dtype=np.float64):
    layer.name = "under_test"
    layer.build(input_shape, np.random.default_rng(0), np.dtype(dtype))
    return layer


POOL_CASES = [
    pytest.param(dict(pool_size=2), (6, 4, 2), id="2x2-tiling"),
    pytest.param(dict(pool_size=2), (5, 7, 2), id="2x2-leftover-row-and-column"),
    pytest.param(dict(pool_size=(2, 3)), (6, 6, 1), id="2x3"),
    pytest.param(dict(pool_size=3, strides=2), (7, 6, 2), id="3x3-stride2-overlapping"),
    pytest.param(dict(pool_size=3, strides=1), (4, 5, 2), id="3x3-stride1-overlapping"),
    pytest.param(dict(pool_size=2, strides=3), (7, 7, 1), id="stride-larger-than-pool"),
    pytest.param(dict(pool_size=2, strides=3), (5, 6, 2), id="stride-larger-than-pool-ending-at-the-edge"),
    pytest.param(dict(pool_size=2, padding="same"), (5, 7, 2), id="2x2-same-odd-input"),
    pytest.param(dict(pool_size=3, strides=1, padding="same"), (4, 5, 2), id="3x3-stride1-same"),
    pytest.param(dict(pool_size=4, strides=2, padding="same"), (5, 6, 1), id="4x4-stride2-same"),
]


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
@pytest.mark.parametrize(("config", "input_shape"), POOL_CASES)
def test_forward_matches_naive_loop_and_gradients_match_finite_differences(cls, config, input_shape):
    layer = built(cls(**config), input_shape)
    x = np.random.default_rng(1).standard_normal((2, *input_shape))
    reduce = np.max if cls is layers.MaxPooling2D else np.mean
    expected = naive_pool(x, layer.pool_size, layer.strides, layer.padding, reduce)
    y = layer.forward(x, training=True)
    assert y.shape == (2, *layer.output_shape)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    result = gradcheck.check_layer(layer, input_shape, x=x)
    assert result.passed, str(result)


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
@pytest.mark.parametrize(("config", "input_shape"), POOL_CASES)
@pytest.mark.parametrize("batch", [1, 1500])  # small inputs fold whole rows at once, larger ones window offsets
def test_inference_forward_matches_naive_loop_for_one_sample_and_a_large_batch(cls, config, input_shape, batch):
    layer = built(cls(**config), input_shape)
    x = np.random.default_rng(1).standard_normal((batch, *input_shape))
    reduce = np.max if cls is layers.MaxPooling2D else np.mean
    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_pool(x, layer.pool_size, layer.strides, layer.padding, reduce),
                               rtol=1e-12, atol=1e-12)
    assert y.flags.c_contiguous and not np.shares_memory(y, x)


def test_max_pooling_same_padding_never_picks_the_padding():
    layer = built(layers.MaxPooling2D(2, padding="same"), (3, 3, 1))
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # all negative: a zero pad would win everywhere
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], [[-1, -3], [-7, -9]])


def test_average_pooling_same_padding_averages_real_pixels_only():
    layer = built(layers.AveragePooling2D(2, padding="same"), (3, 3, 1))
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    # windows: {1,2,4,5} {3,6} / {7,8} {9}
    np.testing.assert_allclose(layer.forward(x)[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


@pytest.mark.parametrize("config", [dict(pool_size=2), dict(pool_size=3, strides=1)])
def test_max_pooling_ties_send_the_gradient_to_one_element_only(config):
    layer = built(layers.MaxPooling2D(**config), (4, 4, 3))
    x = np.zeros((2, 4, 4, 3))  # every window is a tie, as after a ReLU that zeroed a region
    y = layer.forward(x, training=True)
    grad = layer.backward(np.ones_like(y))
    assert grad.sum() == y.size  # each output's gradient counted exactly once
    if layer.strides == layer.pool_size:
        np.testing.assert_array_equal(grad[:, ::2, ::2], 1.0)  # the first element of each window wins
        assert grad[:, 1::2].sum() == 0 and grad[:, :, 1::2].sum() == 0


def test_max_pooling_gradient_goes_to_the_maximum():
    layer = built(layers.MaxPooling2D(2), (2, 2, 1))
    x = np.array([[[[1.0], [5.0]], [[3.0], [2.0]]]])
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.full((1, 1, 1, 1), 7.0))[0, :, :, 0], [[0, 7], [0, 0]])


def test_float32_in_float32_out():
    for cls in (layers.MaxPooling2D, layers.AveragePooling2D):
        layer = built(cls(2, padding="same"), (5, 5, 3), np.float32)
        x = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
        y = layer.forward(x, training=True)
        assert y.dtype == np.float32 and layer.backward(y).dtype == np.float32


def test_global_average_pooling():
    layer = built(layers.GlobalAveragePooling2D(), (3, 4, 2))
    assert layer.output_shape == (2,)
    x = np.random.default_rng(0).standard_normal((3, 3, 4, 2))
    np.testing.assert_allclose(layer.forward(x, training=True), x.mean(axis=(1, 2)))
    result = gradcheck.check_layer(layer, (3, 4, 2), x=x)
    assert result.passed, str(result)
    with pytest.raises(ValueError, match="height, width, channels"):
        layers.GlobalAveragePooling2D().build((12,), np.random.default_rng(0), np.dtype(np.float32))


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_config_round_trip_and_defaults(cls):
    layer = cls(pool_size=(2, 3), padding="same", name="pool")
    assert layer.strides == (2, 3)  # strides default to the pool size, as in Keras
    config = layer.get_config()
    assert cls(**config).get_config() == config
    assert layers.REGISTRY[cls.__name__] is cls
    assert layers.REGISTRY["GlobalAveragePooling2D"] is layers.GlobalAveragePooling2D


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(pool_size=0), "pool_size"),
    (dict(pool_size=2, strides=(1, 2, 3)), "strides"),
    (dict(pool_size=2, padding="causal"), "padding"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.MaxPooling2D(**kwargs)


def test_window_larger_than_input_is_refused_at_build():
    with pytest.raises(ValueError, match="does not fit"):
        built(layers.MaxPooling2D(4), (3, 3, 1))


def naive_first_max_gradient(x, grad, pool, padding):
    """dL/dx of max pooling with stride = pool: each window's gradient to its first maximum (row-major)."""
    n, height, width, channels = x.shape
    padded_height, padded_width = -(-height // pool) * pool, -(-width // pool) * pool
    padded = np.full((n, padded_height, padded_width, channels), -np.inf) if padding == "same" else x
    if padding == "same":
        padded[:, :height, :width] = x
    result = np.zeros(padded.shape)
    for sample, r, c, channel in np.ndindex(grad.shape):
        window = padded[sample, r * pool:(r + 1) * pool, c * pool:(c + 1) * pool, channel]
        i, j = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum, row-major
        result[sample, r * pool + i, c * pool + j, channel] = grad[sample, r, c, channel]
    return result[:, :height, :width]


@pytest.mark.parametrize(("padding", "input_shape"), [("valid", (6, 8, 3)), ("same", (7, 5, 2))])
def test_max_pooling_2x2_routes_ties_like_the_general_rule(padding, input_shape):
    """The 2x2 shortcut against a loop, on values with ties in every position of the windows."""
    layer = built(layers.MaxPooling2D(2, padding=padding), input_shape, np.float32)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, (4, *input_shape)).astype(np.float32)
    y = layer.forward(x, training=True)
    grad = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(grad), naive_first_max_gradient(x, grad, 2, padding))


@pytest.mark.parametrize("cls", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pixels_no_window_reads_get_exactly_zero_gradient(cls):
    """A stride larger than the window skips rows and columns, even when the last window ends at the edge."""
    layer = built(cls(2, strides=3), (6, 6, 1))
    for seed in range(3):  # fresh buffers each time: leftovers from earlier arrays must not show through
        x = np.random.default_rng(seed).standard_normal((2, 6, 6, 1))
        grad = layer.backward(np.ones_like(layer.forward(x, training=True)))
        assert not grad[:, [2, 5]].any() and not grad[:, :, [2, 5]].any()
