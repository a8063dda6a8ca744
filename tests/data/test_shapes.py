"""The generated shapes doodle set: determinism, balance, value range, and that the classes can be learned."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.data.errors import DataError
from NeuralNetworks.data.shapes import CLASS_NAMES, draw_shape, load_shapes

SMALL = 10  # drawings per class: 8 train + 2 test


@pytest.fixture(scope="module")
def small():
    return load_shapes(SMALL, seed=3)


def test_same_seed_same_arrays_other_seed_other_arrays(small):
    again = load_shapes(SMALL, seed=3)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    np.testing.assert_array_equal(small.y_train, again.y_train)
    np.testing.assert_array_equal(small.x_test, again.x_test)
    other = load_shapes(SMALL, seed=4)
    assert not np.array_equal(small.x_train, other.x_train)


def test_classes_balanced_shapes_and_dtypes(small):
    assert len(CLASS_NAMES) >= 6 and {"circle", "square", "triangle", "star"} <= set(CLASS_NAMES)
    assert small.class_names == list(CLASS_NAMES) and small.name == "shapes"
    assert small.class_counts("train").tolist() == [8] * len(CLASS_NAMES)
    assert small.class_counts("test").tolist() == [2] * len(CLASS_NAMES)
    assert small.x_train.shape == (8 * len(CLASS_NAMES), 28, 28, 1) and small.x_train.dtype == np.uint8
    assert small.y_train.dtype == np.int64
    assert not np.array_equal(small.y_train, np.sort(small.y_train))  # shuffled, not served class by class


def test_images_look_like_quickdraw_bitmaps(small):
    images = small.x_train[..., 0].astype(int)
    assert images.min() == 0 and images.max() == 255  # black background, full white ink, antialiased between
    ink = (images > 0).mean(axis=(1, 2))
    assert ink.min() > 0.05 and ink.max() < 0.7  # every image is a drawing, none is a blob
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert (border == 0).mean() > 0.9  # QuickDraw's padding keeps the ink off the edges
    assert ((images > 0) & (images < 255)).any(axis=(1, 2)).all()


def test_train_and_test_drawings_differ(small):
    train = {image.tobytes() for image in small.x_train}
    assert not any(image.tobytes() in train for image in small.x_test)
    assert len(train) == len(small.x_train)


def test_a_drawing_does_not_depend_on_the_set_size(small):
    larger = load_shapes(2 * SMALL, seed=3, test_fraction=0.6)  # 8 train drawings per class again
    assert {image.tobytes() for image in larger.x_train} == {image.tobytes() for image in small.x_train}


def test_test_only_gives_the_same_test_set(small):
    test_only = load_shapes(SMALL, seed=3, test_only=True)
    assert len(test_only.y_train) == 0
    np.testing.assert_array_equal(test_only.x_test, small.x_test)


def test_classes_subset_and_unknown_class():
    subset = load_shapes(5, classes=["star", "circle"], seed=0)
    assert subset.label_dict == {0: "star", 1: "circle"}
    assert subset.class_counts("train").tolist() == [4, 4]
    with pytest.raises(DataError, match="unknown class\\(es\\) 'hexagon'; available: circle, square"):
        load_shapes(5, classes=["hexagon"])


@pytest.mark.parametrize("options, argument", [
    ({"samples_per_class": 1}, "samples_per_class"), ({"samples_per_class": 2.5}, "samples_per_class"),
    ({"test_fraction": 0}, "test_fraction"),
])
def test_bad_options(options, argument):
    with pytest.raises(ValueError, match=argument):
        load_shapes(**options)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_strokes_are_point_lists(name):
    drawing = draw_shape(name, np.random.default_rng(0))
    assert drawing and all(stroke.ndim == 2 and stroke.shape[1] == 2 and len(stroke) >= 2 for stroke in drawing)
    assert all(np.isfinite(stroke).all() for stroke in drawing)


def test_classes_are_separable_by_nearest_centroid():
    dataset = load_shapes(30, seed=0)
    x_train = dataset.x_train.reshape(len(dataset.x_train), -1) / 255
    x_test = dataset.x_test.reshape(len(dataset.x_test), -1) / 255
    centroids = np.stack([x_train[dataset.y_train == label].mean(axis=0) for label in range(dataset.num_classes)])
    distances = ((x_test[:, np.newaxis, :] - centroids[np.newaxis]) ** 2).sum(axis=-1)
    accuracy = (distances.argmin(axis=1) == dataset.y_test).mean()
    assert accuracy > 0.5  # chance is 1/8: the classes differ in pixels, not only in the labels


@pytest.mark.slow
def test_default_mlp_learns_the_default_set():
    from NeuralNetworks.nn.presets import default_mlp

    dataset = load_shapes(seed=0)
    model = default_mlp(dataset.input_shape, dataset.num_classes, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(dataset.x_train, dataset.y_train, epochs=4, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(dataset.x_test, dataset.y_test)
    assert accuracy >= 0.95
