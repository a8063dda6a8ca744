"""Conv2D: Keras padding geometry, forward against a naive loop (and PyTorch), gradients, config, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, layers, models, optimizers, presets
from NeuralNetworks.nn.layers import convolution
from NeuralNetworks.nn.layers.windows import output_length, padding_amounts

ACTIVATIONS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


def naive_conv2d(x, kernel, bias, strides, padding):
    """Cross-correlation written the slow, obvious way: one dot product per output pixel and filter."""
    kh, kw, _, filters = kernel.shape
    n, height, width, _ = x.shape
    sh, sw = strides
    if padding == "same":  # TensorFlow: out = ceil(in / stride); the odd pixel of padding goes bottom / right
        oh, ow = -(-height // sh), -(-width // sw)
        pad_h = max((oh - 1) * sh + kh - height, 0)
        pad_w = max((ow - 1) * sw + kw - width, 0)
        x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    else:
        oh, ow = (height - kh) // sh + 1, (width - kw) // sw + 1
    y = np.zeros((n, oh, ow, filters))
    for b in range(n):
        for r in range(oh):
            for c in range(ow):
                window = x[b, r * sh:r * sh + kh, c * sw:c * sw + kw, :]
                for f in range(filters):
                    y[b, r, c, f] = np.sum(window * kernel[..., f]) + (0 if bias is None else bias[f])
    return y


def built(layer, input_shape, dtype=np.float64, seed=0):
    layer.name = layer.name or "under_test"
    layer.build(input_shape, np.random.default_rng(seed), np.dtype(dtype))
    return layer


@pytest.mark.parametrize(("size", "window", "stride", "padding", "expected_length", "expected_pads"), [
    (5, 3, 1, "valid", 3, (0, 0)),
    (6, 3, 2, "valid", 2, (0, 0)),       # the last row is never covered: floor((6 - 3) / 2) + 1
    (5, 3, 1, "same", 5, (1, 1)),
    (5, 2, 1, "same", 5, (0, 1)),        # even kernel: the extra pixel goes after (bottom / right)
    (5, 4, 1, "same", 5, (1, 2)),
    (5, 5, 1, "same", 5, (2, 2)),
    (5, 3, 2, "same", 3, (1, 1)),        # out = ceil(5 / 2) = 3; total = 2 * 2 + 3 - 5 = 2
    (6, 3, 2, "same", 3, (0, 1)),        # total = 2 * 2 + 3 - 6 = 1
    (6, 4, 2, "same", 3, (1, 1)),
    (7, 2, 2, "same", 4, (0, 1)),
    (4, 1, 3, "same", 2, (0, 0)),        # max(..., 0): a negative total means no padding
])
def test_output_length_and_padding_follow_tensorflow(size, window, stride, padding, expected_length,
                                                     expected_pads):
    assert output_length(size, window, stride, padding) == expected_length
    assert padding_amounts(size, window, stride, padding) == expected_pads


FORWARD_CASES = [
    dict(filters=2, kernel_size=3, strides=1, padding="valid"),
    dict(filters=3, kernel_size=(2, 3), strides=(2, 1), padding="valid"),
    dict(filters=2, kernel_size=2, strides=1, padding="same"),
    dict(filters=2, kernel_size=4, strides=2, padding="same"),
    dict(filters=1, kernel_size=5, strides=1, padding="same", use_bias=False),
    dict(filters=2, kernel_size=3, strides=2, padding="same"),
]


@pytest.mark.parametrize("channels", [3, 1])  # one channel infers through transposed columns, the bias inside
@pytest.mark.parametrize("config", FORWARD_CASES, ids=lambda c: f"{c['kernel_size']}-{c['strides']}-{c['padding']}")
def test_forward_matches_a_naive_loop(config, channels):
    layer = built(layers.Conv2D(**config), (6, 5, channels))
    layer.params.get("bias", np.zeros(0))[...] = np.random.default_rng(2).standard_normal(layer.filters)
    x = np.random.default_rng(1).standard_normal((2, 6, 5, channels))
    expected = naive_conv2d(x, layer.params["kernel"], layer.params.get("bias"), layer.strides, layer.padding)
    for training in (False, True, False):  # inference before and after a training batch: each keeps its buffers
        y = layer.forward(x, training=training)
        assert y.shape == (2, *layer.output_shape)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", FORWARD_CASES, ids=lambda c: f"{c['kernel_size']}-{c['strides']}-{c['padding']}")
def test_forward_matches_pytorch(config):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    layer = built(layers.Conv2D(**config), (7, 6, 2))
    x = np.random.default_rng(1).standard_normal((2, 7, 6, 2))
    g = layer.geometry
    padded = np.pad(x, ((0, 0), (g.top, g.padded_height - g.height - g.top),
                        (g.left, g.padded_width - g.width - g.left), (0, 0)))
    expected = functional.conv2d(torch.from_numpy(padded.transpose(0, 3, 1, 2)),
                                 torch.from_numpy(layer.params["kernel"].transpose(3, 2, 0, 1).copy()),
                                 None if "bias" not in layer.params else torch.from_numpy(layer.params["bias"]),
                                 stride=layer.strides).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-10, atol=1e-10)


GRADIENT_CASES = [
    *[pytest.param(dict(filters=2, kernel_size=3, activation=a), (5, 4, 2), id=f"valid-k3-{a}") for a in ACTIVATIONS],
    pytest.param(dict(filters=2, kernel_size=3, strides=2), (6, 5, 2), id="valid-k3-s2"),
    pytest.param(dict(filters=3, kernel_size=(2, 3), strides=(2, 1)), (5, 6, 1), id="valid-k2x3-s2x1"),
    *[pytest.param(dict(filters=2, kernel_size=k, strides=s, padding="same"), (5, 4, 2), id=f"same-k{k}-s{s}")
      for k in (2, 3, 4, 5) for s in (1, 2)],
    pytest.param(dict(filters=2, kernel_size=3, padding="same", use_bias=False, activation="relu"), (4, 5, 3),
                 id="same-no-bias-relu"),
    pytest.param(dict(filters=4, kernel_size=1), (3, 4, 3), id="pointwise"),
    # one channel: the transposed columns, in training as well
    pytest.param(dict(filters=3, kernel_size=3, padding="same", activation="relu"), (5, 4, 1), id="one-channel-same"),
    pytest.param(dict(filters=2, kernel_size=(3, 2), use_bias=False), (5, 6, 1), id="one-channel-no-bias"),
]


@pytest.mark.parametrize(("config", "input_shape"), GRADIENT_CASES)
def test_gradients_match_finite_differences(config, input_shape):
    layer = built(layers.Conv2D(**config), input_shape)
    x = np.random.default_rng(3).standard_normal((2, *input_shape))
    y = layer.forward(x, training=True)
    assert y.shape == (2, *layer.output_shape)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    result = gradcheck.check_layer(layer, input_shape, x=x)
    assert result.passed, str(result)
    assert set(result.errors) == {"input", *layer.params}


@pytest.mark.parametrize("config", [dict(padding="same"), dict(strides=2, padding="same"), dict(padding="valid")],
                         ids=str)
def test_im2col_in_chunks_of_a_few_images_gives_the_same_numbers(monkeypatch, config):
    """The direct path builds and multiplies the columns a chunk of images at a time (the last chunk shorter):
    every chunk size gives the forward, dL/dx and dL/dkernel (summed chunk by chunk) of the whole batch up to
    float32 rounding (BLAS may round a product's last rows differently when it has fewer rows)."""
    shape = (7, 6, 5)
    x = np.random.default_rng(7).standard_normal((5, *shape)).astype(np.float32)
    results = []
    for images_per_chunk in (5, 2, 1):
        layer = built(layers.Conv2D(3, 3, **config), shape, np.float32)
        g = layer.geometry
        monkeypatch.setattr(convolution, "DIRECT_CHUNK_VALUES", images_per_chunk * g.out_height * g.out_width * 45)
        assert layer._direct_chunk(len(x)) == images_per_chunk
        y = layer.forward(x, training=True)
        grad_x = layer.backward(np.cos(y))
        results.append((y, grad_x, layer.grads["kernel"].copy()))
    for y, grad_x, grad_kernel in results[1:]:
        for ours, whole in zip((y, grad_x, grad_kernel), results[0], strict=True):
            np.testing.assert_allclose(ours, whole, rtol=1e-5, atol=1e-5)


def test_float32_stays_float32_and_agrees_with_float64():
    layer32 = built(layers.Conv2D(4, 3, padding="same", activation="relu"), (6, 6, 2), np.float32)
    layer64 = built(layers.Conv2D(4, 3, padding="same", activation="relu"), (6, 6, 2), np.float64)
    x = np.random.default_rng(0).standard_normal((3, 6, 6, 2))
    y32 = layer32.forward(x.astype(np.float32), training=True)
    assert y32.dtype == np.float32
    assert layer32.backward(np.ones_like(y32)).dtype == np.float32
    np.testing.assert_allclose(y32, layer64.forward(x), rtol=1e-5, atol=1e-5)


def test_an_inference_forward_between_training_forward_and_backward_is_caught_not_silently_wrong():
    layer = built(layers.Conv2D(2, 3), (5, 5, 1))
    rng = np.random.default_rng(0)
    x, other = rng.standard_normal((2, 2, 5, 5, 1))
    layer.forward(x, training=True)
    layer.forward(other, training=False)  # e.g. a callback predicting mid-step
    with pytest.raises(RuntimeError, match="forward\\(training=True\\)"):
        layer.backward(np.ones((2, 3, 3, 2)))


def test_outputs_are_fresh_arrays_not_reused_buffers():
    layer = built(layers.Conv2D(2, 3, padding="same"), (4, 4, 1))
    rng = np.random.default_rng(0)
    first_input, second_input = rng.standard_normal((2, 2, 4, 4, 1))
    first = layer.forward(first_input)
    kept = first.copy()
    layer.forward(second_input)
    np.testing.assert_array_equal(first, kept)


def test_backward_without_training_forward_raises():
    layer = built(layers.Conv2D(2, 3), (5, 5, 1))
    y = layer.forward(np.zeros((1, 5, 5, 1)), training=False)
    with pytest.raises(RuntimeError, match="forward\\(training=True\\)"):
        layer.backward(np.ones_like(y))


def test_default_initializer_follows_the_activation_and_can_be_overridden():
    assert layers.Conv2D(4, 3, activation="relu").initializer == "he_normal"
    assert layers.Conv2D(4, 3, activation="tanh").initializer == "glorot_uniform"
    assert layers.Conv2D(4, 3).initializer == "glorot_uniform"
    layer = built(layers.Conv2D(64, 3, activation="relu", initializer="zeros"), (8, 8, 16))
    assert not layer.params["kernel"].any()
    he = built(layers.Conv2D(64, 3, activation="relu"), (8, 8, 16))
    assert he.params["kernel"].std() == pytest.approx(np.sqrt(2 / (3 * 3 * 16)), rel=0.05)  # fan_in = kh kw c


def test_config_round_trip_and_registry():
    layer = layers.Conv2D(8, (2, 3), strides=(1, 2), padding="SAME", activation="relu", use_bias=False,
                          name="conv", input_shape=(9, 9, 3))
    config = layer.get_config()
    assert config["kernel_size"] == [2, 3] and config["strides"] == [1, 2] and config["padding"] == "same"
    rebuilt = layers.Conv2D(**config)
    assert rebuilt.get_config() == config
    assert layers.REGISTRY["Conv2D"] is layers.Conv2D


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(filters=0, kernel_size=3), "filters"),
    (dict(filters=2, kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(filters=2, kernel_size=-1), "kernel_size"),
    (dict(filters=2, kernel_size=3, strides=0), "strides"),
    (dict(filters=2, kernel_size=3, padding="full"), "padding"),
    (dict(filters=2, kernel_size=3, initializer="nope"), "initializer"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Conv2D(**kwargs)


def test_shape_errors_surface_when_the_layer_is_added():
    model = models.Sequential()
    model.add(layers.Dense(4, input_shape=(3,)))
    with pytest.raises(ValueError, match="height, width, channels"):
        model.add(layers.Conv2D(2, 3))
    with pytest.raises(ValueError, match="5x5 window does not fit in a 3x8 input"):
        models.Sequential([layers.Conv2D(2, 5, input_shape=(3, 8, 1))])  # "valid": no room for the window
    models.Sequential([layers.Conv2D(2, 5, padding="same", input_shape=(3, 8, 1))])  # "same" always fits
    layer = built(layers.Conv2D(2, 3), (5, 5, 1))
    with pytest.raises(ValueError, match=r"\(n, 5, 5, 1\)"):
        layer.forward(np.zeros((2, 5, 4, 1)))


def test_save_and_load_round_trip_every_new_layer(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=(12, 10, 1)))
    model.add(layers.Conv2D(4, 3, padding="same", use_bias=False))
    model.add(layers.BatchNormalization(momentum=0.5))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Conv2D(6, (2, 3), strides=2, padding="same", activation="relu"))
    model.add(layers.AveragePooling2D(2, strides=1, padding="same"))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 12, 10, 1)).astype(np.uint8)
    y = rng.integers(0, 3, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    batch_norm = model.layers[2]
    assert not np.allclose(batch_norm.state["moving_mean"], 0)  # training moved the statistics

    loaded = models.load(model.save(tmp_path / "cnn"))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    for key, value in model.get_named_weights().items():
        np.testing.assert_array_equal(loaded.get_named_weights()[key], value, err_msg=key)
    np.testing.assert_array_equal(loaded.layers[2].state["moving_variance"], batch_norm.state["moving_variance"])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_default_cnn_learns_a_spatial_task_and_stays_small(tmp_path):
    model = presets.default_cnn((28, 28, 1), 2, seed=0)
    assert model.output_shape == (2,)
    assert any(isinstance(layer, layers.Conv2D) for layer in model.layers)
    rng = np.random.default_rng(0)
    # An end-to-end check of the preset (fit, evaluate, save, load); the layers' maths is checked above.
    # Class 1: a vertical stroke in the left half; class 0: in the right half.
    x = rng.integers(0, 60, (96, 28, 28, 1)).astype(np.uint8)
    y = rng.integers(0, 2, 96)
    for image, label in zip(x, y, strict=True):
        column = rng.integers(2, 10) if label else rng.integers(18, 26)
        image[4:24, column:column + 3] = 255
    model.compile(optimizer=optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:64], y[:64], epochs=4, batch_size=16, verbose=0)
    _, accuracy = model.evaluate(x[64:], y[64:])
    assert accuracy >= 0.9
    path = model.save(tmp_path / "cnn")  # optimizer slots included, as the command line saves it
    assert path.stat().st_size < 2_000_000
    assert models.load(path).count_params() == model.count_params()
