"""The playground's 2-D problems: seeded, in the square, balanced, split as asked, refused when asked wrongly."""

from __future__ import annotations

import numpy as np
import pytest

from NeuralNetworks.data import toy


@pytest.mark.parametrize("name", toy.NAMES)
def test_same_seed_same_arrays_other_seed_other_arrays(name):
    first, again, other = toy.make(name, seed=3), toy.make(name, seed=3), toy.make(name, seed=4)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.x_train, other.x_train)


@pytest.mark.parametrize("name", toy.NAMES)
@pytest.mark.parametrize("train_fraction", [0.1, 0.5, 0.9])
def test_shapes_types_and_split(name, train_fraction):
    data = toy.make(name, train_fraction=train_fraction, seed=0)
    assert len(data.x_train) == round(train_fraction * toy.SAMPLES)
    assert len(data.x_train) + len(data.x_test) == toy.SAMPLES
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == y.dtype == np.float32 and x.shape == (len(x), 2) and y.shape == (len(x), 1)
    assert data.task == ("regression" if name == "regression" else "classification")


@pytest.mark.parametrize("name", toy.NAMES)
def test_without_noise_every_point_lies_in_the_square_and_targets_in_range(name):
    data = toy.make(name, seed=1)
    points = np.concatenate([data.x_train, data.x_test])
    targets = np.concatenate([data.y_train, data.y_test])
    if name != "blobs":  # Gaussian blobs have tails
        assert np.abs(points).max() <= toy.EXTENT
    if name == "regression":
        assert np.abs(targets).max() <= 1 and targets.std() > 0.2
    else:
        assert set(np.unique(targets)) == {0.0, 1.0} and abs(targets.mean() - 0.5) < 0.05


def test_labels_follow_the_problems_rule():
    xor = toy.make("xor", seed=2)
    assert np.array_equal(xor.y_train[:, 0] == 1, xor.x_train[:, 0] * xor.x_train[:, 1] > 0)
    circles = toy.make("circles", seed=2)
    radius = np.hypot(*circles.x_train.T)
    inner = circles.y_train[:, 0] == 1
    assert radius[inner].max() < radius[~inner].min()
    blobs = toy.make("blobs", seed=2)
    assert (blobs.x_train[blobs.y_train[:, 0] == 1].mean(axis=0) > 0).all()


def test_noise_moves_the_points():
    clean, noisy = toy.make("circles", seed=5), toy.make("circles", noise=0.3, seed=5)
    radius = np.hypot(*noisy.x_train.T)
    inner = noisy.y_train[:, 0] == 1
    assert radius[inner].max() > radius[~inner].min()  # the classes now overlap
    assert not np.array_equal(clean.x_train, noisy.x_train)


def test_grid_runs_row_by_row_from_the_top_left():
    side = 4
    points = toy.grid(side).reshape(side, side, 2)
    assert points[0, 0, 0] < 0 < points[0, 0, 1]  # top left: x negative, y positive
    assert np.all(np.diff(points[0, :, 0]) > 0) and np.all(np.diff(points[:, 0, 1]) < 0)
    assert np.abs(points).max() < toy.EXTENT


@pytest.mark.parametrize(("arguments", "named"), [
    ({"name": "moons"}, "name"), ({"name": "xor", "noise": 0.7}, "noise"), ({"name": "xor", "noise": "0"}, "noise"),
    ({"name": "xor", "train_fraction": 1.0}, "train_fraction"), ({"name": "xor", "seed": -1}, "seed"),
    ({"name": "xor", "samples": 1}, "samples"), ({"name": "xor", "samples": 10**6}, "samples"),
])
def test_wrong_arguments_are_named(arguments, named):
    with pytest.raises(ValueError, match=f"`{named}`"):
        toy.make(**arguments)
