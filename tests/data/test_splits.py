"""Dataset container and the split / one-hot helpers."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.data.splits import Dataset, one_hot

CLASS_SIZES = (30, 50, 20)


def class_sorted_dataset() -> Dataset:
    """Training data stored class by class (the case a naive last-10% validation split gets wrong)."""
    labels = np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES)
    images = np.zeros((len(labels), 28, 28, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels))  # sample id, to trace rows
    test_labels = np.arange(len(CLASS_SIZES))
    return Dataset(images, labels, np.zeros((3, 28, 28, 1), np.uint8), test_labels,
                   label_dict={0: "a", 1: "b", 2: "c"}, name="toy")


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 1]), 4)
    np.testing.assert_array_equal(encoded, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert encoded.dtype == np.float32


@pytest.mark.parametrize("labels, classes, message", [
    (np.array([0, 3]), 3, r"labels in \[0, 2\]. Received labels from 0 to 3"),
    (np.array([0.5]), 3, "integer labels"),
    (np.array([0]), 0, "positive integer `num_classes`"),
])
def test_one_hot_rejects_bad_input(labels, classes, message):
    with pytest.raises(ValueError, match=message):
        one_hot(labels, classes)


def test_properties_and_repr():
    dataset = class_sorted_dataset()
    assert dataset.num_classes == 3 and dataset.input_shape == (28, 28, 1)
    assert dataset.class_names == ["a", "b", "c"]
    assert dataset.y_train_one_hot.shape == (100, 3) and dataset.y_test_one_hot[2].tolist() == [0, 0, 1]
    assert dataset.class_counts("train").tolist() == list(CLASS_SIZES)
    assert repr(dataset) == "Dataset('toy', train=100, test=3, num_classes=3, input_shape=(28, 28, 1))"


def test_with_validation_is_stratified_random_and_disjoint():
    dataset = class_sorted_dataset()
    split = dataset.with_validation(0.2, seed=1)
    assert split.class_counts("val").tolist() == [6, 10, 4]
    assert split.class_counts("train").tolist() == [24, 40, 16]
    train_ids, val_ids = set(split.x_train[:, 0, 0, 0]), set(split.x_val[:, 0, 0, 0])
    assert not train_ids & val_ids and len(train_ids | val_ids) == 100
    assert sorted(val_ids) != list(range(24, 30)) + list(range(70, 80)) + list(range(96, 100))  # not the tails
    assert len(dataset.y_train) == 100 and dataset.x_val is None  # the original is untouched
    again = dataset.with_validation(0.2, seed=1)
    np.testing.assert_array_equal(again.x_val, split.x_val)
    assert not np.array_equal(dataset.with_validation(0.2, seed=2).x_val, split.x_val)


def test_with_validation_unstratified_draws_every_class_from_sorted_data():
    split = class_sorted_dataset().with_validation(0.3, seed=0, stratify=False)
    assert len(split.y_val) == 30 and set(split.y_val.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, True])
def test_with_validation_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        class_sorted_dataset().with_validation(fraction)


def test_with_validation_twice_is_refused():
    with pytest.raises(ValueError, match="already has a validation split of 20 samples"):
        class_sorted_dataset().with_validation(0.2).with_validation(0.2)


def test_dataset_validates_its_arrays():
    dataset = class_sorted_dataset()
    with pytest.raises(ValueError, match=r"x_train must be uint8 of shape \(N, height, width, channels\)"):
        Dataset(dataset.x_train.astype(np.float32), dataset.y_train, dataset.x_test, dataset.y_test, {0: "a"})
    with pytest.raises(ValueError, match=r"y_test must hold labels in \[0, 1\]"):
        Dataset(dataset.x_train, dataset.y_train % 2, dataset.x_test, dataset.y_test, {0: "a", 1: "b"})
    with pytest.raises(ValueError, match=r"y_train must be integers of shape \(100,\)"):
        Dataset(dataset.x_train, dataset.y_train[:5], dataset.x_test, dataset.y_test, dataset.label_dict)
    with pytest.raises(ValueError, match="label_dict keys must be 0..num_classes-1"):
        Dataset(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, {1: "a", 2: "b", 3: "c"})
