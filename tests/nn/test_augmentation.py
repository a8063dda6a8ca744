"""Augmentation layers: identity at inference, Keras' conventions for each transform, fill modes against a
pixel-by-pixel reference, exact gradients, seeded reproducibility, config and file round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from NeuralNetworks.nn import gradcheck, layers, models

AFFINE = [
    pytest.param(lambda **kw: layers.RandomTranslation(0.2, (-0.1, 0.3), **kw), id="translation"),
    pytest.param(lambda **kw: layers.RandomRotation(0.1, **kw), id="rotation"),
    pytest.param(lambda **kw: layers.RandomZoom((-0.3, 0.5), **kw), id="zoom"),
    pytest.param(lambda **kw: layers.RandomZoom(0.2, width_factor=(0.0, 0.4), **kw), id="zoom-anisotropic"),
]
AUGMENTATIONS = [*AFFINE, pytest.param(lambda **kw: layers.RandomFlip(**kw), id="flip")]


def built(layer, input_shape, dtype=np.float64, seed=0):
    layer.name = layer.name or "under_test"
    layer.build(tuple(input_shape), np.random.default_rng(seed), np.dtype(dtype))
    return layer


def dot_image(height, width, row, column, channels=1):
    image = np.zeros((1, height, width, channels))
    image[0, row, column] = 1.0
    return image


# -- a pixel-by-pixel reference: bilinear/nearest sampling of the image extended as Keras describes ----------
def extend(index, size, fill_mode):
    if fill_mode == "constant":
        return index if 0 <= index < size else None
    if fill_mode == "nearest":
        return min(max(index, 0), size - 1)
    if fill_mode == "wrap":
        return index % size
    folded = index % (2 * size)  # reflect: (d c b a | a b c d | d c b a)
    return folded if folded < size else 2 * size - 1 - folded


def reference_transform(image, matrix, fill_mode, fill_value, interpolation):
    height, width, _ = image.shape
    out = np.zeros(image.shape)
    for row in range(height):
        for column in range(width):
            x = matrix[0, 0] * column + matrix[0, 1] * row + matrix[0, 2]
            y = matrix[1, 0] * column + matrix[1, 1] * row + matrix[1, 2]
            if interpolation == "nearest":
                corners = [(math.floor(x + 0.5), math.floor(y + 0.5), 1.0)]
            else:
                x0, y0 = math.floor(x), math.floor(y)
                fx, fy = x - x0, y - y0
                corners = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                           (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
            for cx, cy, weight in corners:
                ex, ey = extend(cx, width, fill_mode), extend(cy, height, fill_mode)
                out[row, column] += weight * (fill_value if ex is None or ey is None else image[ey, ex])
    return out


@pytest.mark.parametrize("make_layer", AFFINE)
@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_resampling_matches_the_pixel_by_pixel_reference(make_layer, fill_mode, interpolation):
    layer = built(make_layer(fill_mode=fill_mode, interpolation=interpolation, fill_value=0.7, seed=5), (9, 7, 2))
    x = np.random.default_rng(1).random((3, 9, 7, 2))
    matrices = layer.transforms(3, 9, 7)
    layer._rng = np.random.default_rng(5)  # draw the same transforms again in forward
    y = layer.forward(x, training=True)
    for image, matrix, out in zip(x, matrices, y, strict=True):
        np.testing.assert_allclose(out, reference_transform(image, matrix, fill_mode, 0.7, interpolation),
                                   atol=1e-12)


@pytest.mark.parametrize("make_layer", AUGMENTATIONS)
@pytest.mark.parametrize(("input_shape", "dtype"), [((28, 28, 1), np.float32), ((9, 7, 3), np.float64),
                                                    ((8, 8), np.float32)], ids=["mnist", "rgb", "no-channel"])
def test_shapes_and_dtype_are_kept_and_inference_is_the_identity(make_layer, input_shape, dtype):
    layer = built(make_layer(), input_shape, dtype)
    assert layer.identity_at_inference is True
    assert layer.count_params() == 0 and layer.output_shape == input_shape
    x = np.random.default_rng(0).random((5, *input_shape)).astype(dtype)
    assert layer.forward(x, training=False) is x
    assert layer.backward(np.ones_like(x)) is not None  # identity backward after an inference forward
    y = layer.forward(x, training=True)
    assert y.shape == x.shape and y.dtype == dtype
    assert not np.allclose(y, x)


def test_each_image_of_a_batch_gets_its_own_transform():
    layer = built(layers.RandomRotation(0.2, seed=0), (10, 10, 1))
    x = np.repeat(np.random.default_rng(0).random((1, 10, 10, 1)), 4, axis=0)
    y = layer.forward(x, training=True)
    assert all(not np.allclose(y[0], y[i]) for i in range(1, 4))


@pytest.mark.parametrize(("down", "right"), [(3, 0), (0, -2), (-1, 4)])
def test_translation_moves_a_pixel_by_whole_pixels_positive_down_and_right(down, right):
    height, width = 12, 10
    layer = built(layers.RandomTranslation((down / height,) * 2, (right / width,) * 2, fill_mode="constant"),
                  (height, width, 1))
    y = layer.forward(dot_image(height, width, 5, 4), training=True)
    np.testing.assert_allclose(y, dot_image(height, width, 5 + down, 4 + right), atol=1e-12)


def test_rotation_by_a_quarter_turn_is_rot90_counter_clockwise():
    rng = np.random.default_rng(0)
    image = rng.random((2, 8, 8, 3))
    turn_left = built(layers.RandomRotation((0.25, 0.25)), (8, 8, 3))
    turn_right = built(layers.RandomRotation((-0.25, -0.25)), (8, 8, 3))
    np.testing.assert_allclose(turn_left.forward(image, training=True), np.rot90(image, 1, axes=(1, 2)),
                               atol=1e-12)
    np.testing.assert_allclose(turn_right.forward(image, training=True), np.rot90(image, -1, axes=(1, 2)),
                               atol=1e-12)


def test_positive_zoom_zooms_out_about_the_centre():
    out = built(layers.RandomZoom((1.0, 1.0), fill_mode="constant"), (9, 9, 1))  # content at half size
    zoom_in = built(layers.RandomZoom((-0.5, -0.5), fill_mode="constant"), (9, 9, 1))  # twice the size
    np.testing.assert_allclose(out.forward(dot_image(9, 9, 4, 8), training=True), dot_image(9, 9, 4, 6),
                               atol=1e-12)
    np.testing.assert_allclose(zoom_in.forward(dot_image(9, 9, 2, 3), training=True)[0, 0, 2], 1.0)
    squeeze = built(layers.RandomZoom((0.0, 0.0), width_factor=(1.0, 1.0)), (9, 9, 1))  # width only
    np.testing.assert_allclose(squeeze.forward(dot_image(9, 9, 8, 8), training=True), dot_image(9, 9, 8, 6),
                               atol=1e-12)


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("make_layer", [
    pytest.param(lambda **kw: layers.RandomRotation((0.03, 0.03), **kw), id="rotation"),
    pytest.param(lambda **kw: layers.RandomZoom((-0.3, -0.3), width_factor=(0.6, 0.6), **kw), id="zoom"),
    pytest.param(lambda **kw: layers.RandomTranslation((0.17, 0.17), (-0.55, -0.55), **kw), id="translation"),
])
def test_backward_is_the_exact_gradient_of_the_resampling(make_layer, fill_mode):
    layer = built(make_layer(fill_mode=fill_mode, fill_value=0.3), (6, 5, 2))  # fixed factors: a fixed map
    result = gradcheck.check_layer(layer, (6, 5, 2), training=True)
    assert result.passed, str(result)


def test_nearest_interpolation_backward_matches_its_transpose():
    layer = built(layers.RandomRotation(0.3, interpolation="nearest", fill_mode="reflect", seed=0), (7, 6, 1))
    rng = np.random.default_rng(1)
    x, upstream = rng.random((4, 7, 6, 1)), rng.standard_normal((4, 7, 6, 1))
    y = layer.forward(x, training=True)
    assert math.isclose(np.sum(y * upstream), np.sum(x * layer.backward(upstream)), rel_tol=1e-12)


@pytest.mark.parametrize(("mode", "expected"), [
    ("horizontal", {"none", "left-right"}), ("vertical", {"none", "top-bottom"}),
    ("horizontal_and_vertical", {"none", "left-right", "top-bottom", "both"})])
def test_flip_mirrors_each_image_exactly_and_at_random(mode, expected):
    layer = built(layers.RandomFlip(mode, seed=0), (5, 4, 2))
    x = np.random.default_rng(0).random((400, 5, 4, 2))
    y = layer.forward(x, training=True)
    variants = {"none": lambda image: image, "left-right": lambda image: image[:, ::-1],
                "top-bottom": lambda image: image[::-1], "both": lambda image: image[::-1, ::-1]}
    seen = [next(name for name, flip in variants.items() if np.array_equal(flip(image), out))
            for image, out in zip(x, y, strict=True)]  # StopIteration if an output is no exact flip
    counts = {name: seen.count(name) for name in expected}
    assert set(seen) == expected
    assert all(abs(count / len(x) - 1 / len(expected)) < 0.1 for count in counts.values()), counts
    upstream = np.random.default_rng(1).standard_normal(y.shape)  # backward is the transpose: the same flips
    assert math.isclose(np.sum(y * upstream), np.sum(x * layer.backward(upstream)), rel_tol=1e-12)


def augmented_model(seed):
    model = models.Sequential(seed=seed)
    model.add(layers.RandomFlip("horizontal", input_shape=(10, 10, 1)))
    model.add(layers.RandomTranslation(0.1, 0.1, fill_mode="constant"))
    model.add(layers.RandomRotation(0.05))
    model.add(layers.RandomZoom(0.1))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def train_weights(seed):
    rng = np.random.default_rng(0)
    model = augmented_model(seed)
    model.fit(rng.random((40, 10, 10, 1)), rng.integers(0, 3, 40), epochs=2, batch_size=8, verbose=0)
    return model.get_named_weights()


def test_the_model_seed_makes_augmented_training_bit_identical():
    first, again, other = train_weights(seed=1), train_weights(seed=1), train_weights(seed=2)
    assert all(np.array_equal(first[key], again[key]) for key in first)
    assert not np.array_equal(first["dense_1/kernel"], other["dense_1/kernel"])


def test_a_layer_seed_fixes_its_own_draws():
    draws = [built(layers.RandomRotation(0.5, seed=7), (5, 5), seed=seed).transforms(3, 5, 5) for seed in (0, 1)]
    np.testing.assert_array_equal(draws[0], draws[1])


@pytest.mark.parametrize("make_layer", AFFINE)
def test_config_round_trip(make_layer):
    layer = make_layer(fill_mode="wrap", interpolation="nearest", seed=3, fill_value=1.5, name="aug")
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    assert layer.get_config()["fill_mode"] == "wrap" and layer.get_config()["seed"] == 3
    flip = layers.RandomFlip("vertical", seed=2, name="flip")
    assert layers.RandomFlip.from_config(flip.get_config()).get_config() == flip.get_config()


def test_saved_model_keeps_its_augmentation_and_predicts_the_same(tmp_path):
    model = augmented_model(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 10, 10, 1)), rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    loaded = models.load(model.save(tmp_path / "augmented.npz"))
    assert loaded.get_config() == model.get_config()
    assert [type(layer).__name__ for layer in loaded.layers[:4]] == ["RandomFlip", "RandomTranslation",
                                                                     "RandomRotation", "RandomZoom"]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    plain = models.Sequential(seed=0)  # the same network without augmentation predicts exactly the same
    plain.add(layers.Flatten(input_shape=(10, 10, 1)))
    plain.add(layers.Dense(3, activation="softmax"))
    plain.set_weights(model.get_weights())
    np.testing.assert_array_equal(plain.predict(x), model.predict(x))


@pytest.mark.parametrize(("make_layer", "message"), [
    (lambda: layers.RandomRotation(0.1, fill_mode="mirror"), "fill_mode"),
    (lambda: layers.RandomRotation(0.1, interpolation="bicubic"), "interpolation"),
    (lambda: layers.RandomRotation((0.2, 0.1)), "lower <= upper"),
    (lambda: layers.RandomRotation(-0.1), ">= 0"),
    (lambda: layers.RandomRotation((0.1, 0.2, 0.3)), "pair"),
    (lambda: layers.RandomRotation("0.1"), "number"),
    (lambda: layers.RandomTranslation(1.5, 0.1), "within"),
    (lambda: layers.RandomTranslation(0.1, math.nan), "number"),
    (lambda: layers.RandomZoom((-1.0, 0.5)), "within"),
    (lambda: layers.RandomZoom(0.1, fill_value=math.inf), "fill_value"),
    (lambda: layers.RandomZoom(0.1, seed=1.5), "seed"),
    (lambda: layers.RandomZoom(0.1, seed=-1), "seed"),
    (lambda: layers.RandomZoom((0.0, 1e300)), "within"),
    (lambda: layers.RandomFlip("diagonal"), "mode"),
])
def test_bad_arguments_are_named(make_layer, message):
    with pytest.raises(ValueError, match=message):
        make_layer()


def test_a_fill_value_the_dtype_cannot_hold_is_refused_when_built():
    model = models.Sequential(dtype="float32")
    with pytest.raises(ValueError, match="`fill_value` that float32 can hold"):
        model.add(layers.RandomRotation(0.1, fill_value=1e300, input_shape=(8, 8, 1)))


def test_non_image_input_is_refused_when_added():
    model = models.Sequential()
    model.add(layers.Dense(4, input_shape=(3,)))
    with pytest.raises(ValueError, match=r"RandomZoom expects images of shape \(height, width, channels\)"):
        model.add(layers.RandomZoom(0.1))


def test_a_batch_of_the_wrong_shape_is_refused_in_training():
    layer = built(layers.RandomRotation(0.1), (8, 8, 1))
    with pytest.raises(ValueError, match=r"expects a batch of shape \(n, 8, 8, 1\)"):
        layer.forward(np.zeros((2, 8, 9, 1)), training=True)
