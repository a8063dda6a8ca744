"""The ``data.load`` dispatcher the command line uses: names, aliases, default folders, option checks."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from NeuralNetworks import data
from NeuralNetworks.data import DataError, load


def write_t10k(folder, count=4):
    folder.mkdir(parents=True)
    images = np.zeros((count, 28, 28), np.uint8)
    labels = np.arange(count, dtype=np.uint8)
    for name, array, magic in (("t10k-images-idx3-ubyte.gz", images, 0x803), ("t10k-labels-idx1-ubyte.gz", labels, 0x801)):
        header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
        (folder / name).write_bytes(gzip.compress(header + array.tobytes()))


def test_default_is_the_generated_shapes_set():
    dataset = load(samples_per_class=3, seed=1)
    assert dataset.name == "shapes" and dataset.class_names == list(data.SHAPE_CLASSES)


def test_default_folders_are_under_datasets_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets" / "doodle").mkdir(parents=True)
    np.save(tmp_path / "datasets" / "doodle" / "cat.npy", np.zeros((5, 784), np.uint8))
    dataset = load("doodle")
    assert dataset.name == "doodle" and dataset.class_names == ["cat"]
    with pytest.raises(DataError, match="datasets/quickdraw: QuickDraw folder not found"):
        load("quickdraw")
    with pytest.raises(DataError, match="datasets/mnist"):
        load("mnist")


def test_names_are_forgiving_and_test_only_passes_through(tmp_path):
    write_t10k(tmp_path / "fashion")
    dataset = load("Fashion_MNIST", tmp_path / "fashion", test_only=True)
    assert dataset.name == "fashion-mnist" and len(dataset.y_test) == 4 and len(dataset.y_train) == 0
    assert load("mnist", tmp_path / "fashion", test_only=True).label_dict[3] == "3"


@pytest.mark.parametrize("name, data_dir, options, error, message", [
    ("cifar", None, {}, ValueError, "Unknown dataset 'cifar'. Expected one of: shapes, mnist, fashion-mnist, "
                                    "quickdraw"),
    ("mnist", "x", {"classes": ["cat"]}, ValueError, "mnist dataset does not take option\\(s\\) classes; it "
                                                     "takes: test_only"),
    ("shapes", "x", {}, ValueError, "shapes dataset is generated"),
    (3, None, {}, TypeError, "must be a string"),
])
def test_bad_requests(name, data_dir, options, error, message):
    with pytest.raises(error, match=message):
        load(name, data_dir, **options)


def test_real_data_through_the_dispatcher(mnist_dir, quickdraw_dir, fashion_mnist_dir):
    assert len(load("mnist", mnist_dir).y_train) == 60_000
    assert load("doodle", quickdraw_dir, classes=["cat", "eye"], max_per_class=50).num_classes == 2
    assert load("fashion-mnist", fashion_mnist_dir, test_only=True).label_dict[0] == "T-shirt/top"
