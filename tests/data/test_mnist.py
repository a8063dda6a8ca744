"""MNIST / Fashion-MNIST loaders: IDX (gz and raw) and npz round trips, every malformed-file error, real data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks.data import mnist
from NeuralNetworks.data.errors import DataError
from NeuralNetworks.data.mnist import (
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    load_fashion_mnist,
    load_idx_pair,
    load_mnist,
    read_idx,
)

TRAIN_COUNT, TEST_COUNT = 12, 5
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes: magic, one big-endian uint32 per dimension, then the data."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool) -> Path:
    content = idx_bytes(array)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def make_split(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, 10, count, dtype=np.uint8)


@pytest.fixture
def idx_folder(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A folder of the four IDX files (train gzipped, test raw) with random content."""
    rng = np.random.default_rng(7)
    splits = {"train": make_split(rng, TRAIN_COUNT), "test": make_split(rng, TEST_COUNT)}
    for split, (images, labels) in splits.items():
        image_stem, label_stem = mnist.SPLIT_FILES[split]
        write_idx(tmp_path / image_stem, images, compress=split == "train")
        write_idx(tmp_path / label_stem, labels, compress=split == "train")
    return tmp_path, splits


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "images-idx3-ubyte", array, compress)
    result = read_idx(path, IDX_IMAGES_MAGIC)
    np.testing.assert_array_equal(result, array)
    assert result.dtype == np.uint8 and result.flags.writeable


def test_idx_folder_round_trip(idx_folder):
    folder, splits = idx_folder
    dataset = load_mnist(folder)
    for split, (images, labels) in splits.items():
        np.testing.assert_array_equal(getattr(dataset, f"x_{split}"), images[..., np.newaxis])
        np.testing.assert_array_equal(getattr(dataset, f"y_{split}"), labels)
    assert dataset.x_train.shape == (TRAIN_COUNT, 28, 28, 1) and dataset.x_train.dtype == np.uint8
    assert dataset.y_train.dtype == np.int64
    assert dataset.label_dict == {digit: str(digit) for digit in range(10)}
    assert dataset.num_classes == 10 and dataset.input_shape == (28, 28, 1) and dataset.name == "mnist"


def test_dotted_file_names_are_accepted(idx_folder):
    folder, splits = idx_folder
    for path in folder.iterdir():
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    np.testing.assert_array_equal(load_mnist(folder).y_test, splits["test"][1])


def test_npz_round_trip_and_test_only(tmp_path):
    rng = np.random.default_rng(3)
    (x_train, y_train), (x_test, y_test) = make_split(rng, TRAIN_COUNT), make_split(rng, TEST_COUNT)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for source in (tmp_path, tmp_path / "mnist.npz"):
        dataset = load_mnist(source)
        np.testing.assert_array_equal(dataset.x_train[..., 0], x_train)
        np.testing.assert_array_equal(dataset.y_test, y_test)
    test_only = load_mnist(tmp_path, test_only=True)
    assert test_only.x_train.shape == (0, 28, 28, 1) and len(test_only.y_test) == TEST_COUNT


def test_npz_missing_key_and_object_arrays(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"partial\.npz: missing array\(s\) y_train, x_test, y_test"):
        load_mnist(tmp_path / "partial.npz")
    objects = np.array([{"a": 1}], dtype=object)
    np.savez(tmp_path / "objects.npz", x_train=objects, y_train=objects, x_test=objects, y_test=objects)
    with pytest.raises(DataError, match=r"objects\.npz: not a readable \.npz archive of plain arrays"):
        load_mnist(tmp_path / "objects.npz")


def test_npz_wrong_dtype(tmp_path):
    images = np.zeros((2, 28, 28), np.float32)
    labels = np.zeros(2, np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)
    with pytest.raises(DataError, match=r"x_train is float32 of shape \(2, 28, 28\), expected uint8"):
        load_mnist(tmp_path)


def test_wrong_magic_names_file_and_both_numbers(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)))  # a label file (0x801) under an image name
    with pytest.raises(DataError) as caught:
        read_idx(path, IDX_IMAGES_MAGIC)
    assert str(caught.value) == f"{path}: bad magic number 0x00000801, expected 0x00000803 (IDX images)"


def test_non_ubyte_magic_is_rejected(tmp_path):
    path = tmp_path / "floats-idx1"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8), magic=0x00000D01))  # 0x0D: float data
    with pytest.raises(DataError, match="bad magic number 0x00000d01, expected 0x000008NN"):
        read_idx(path)


@pytest.mark.parametrize("compress", [True, False])
def test_truncated_data(tmp_path, compress):
    content = idx_bytes(np.ones((3, 28, 28), np.uint8))[:-10]
    path = tmp_path / ("cut.gz" if compress else "cut")
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataError, match=r"cut(\.gz)?: truncated, the header announces 3x28x28 = 2352 bytes of "
                                        r"data but the file holds 2342"):
        read_idx(path, IDX_IMAGES_MAGIC)


def test_truncated_header_and_trailing_bytes(tmp_path):
    short = tmp_path / "short"
    short.write_bytes(IDX_LABELS_MAGIC.to_bytes(4, "big") + b"\x00\x00")
    with pytest.raises(DataError, match="short: file ends inside the IDX header"):
        read_idx(short, IDX_LABELS_MAGIC)
    long = tmp_path / "long"
    long.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x07")
    with pytest.raises(DataError, match="long: trailing bytes after the 4 bytes of data"):
        read_idx(long, IDX_LABELS_MAGIC)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8)))[:40])
    with pytest.raises(DataError, match=r"broken\.gz: unreadable or corrupt file"):
        read_idx(path, IDX_IMAGES_MAGIC)
    scrambled = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8).reshape(5, 1000) % 7)))
    scrambled[12:40] = bytes(byte ^ 0x5A for byte in scrambled[12:40])  # damage the deflate stream itself
    path.write_bytes(bytes(scrambled))
    with pytest.raises(DataError, match=r"broken\.gz: unreadable or corrupt file"):
        read_idx(path)


def test_count_mismatch(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((5, 28, 28), np.uint8), compress=False)
    labels = write_idx(tmp_path / "labels", np.zeros(4, np.uint8), compress=False)
    with pytest.raises(DataError, match=r"labels: 4 labels for the 5 images of .*images"):
        load_idx_pair(images, labels)


def test_labels_out_of_range(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8), compress=False)
    labels = write_idx(tmp_path / "labels", np.array([3, 12], np.uint8), compress=False)
    with pytest.raises(DataError, match=r"labels: label 12 outside the expected 0\.\.9"):
        load_idx_pair(images, labels, num_classes=10)


def test_missing_train_files_named_with_accepted_names(idx_folder):
    folder, _ = idx_folder
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as caught:
        load_mnist(folder)
    message = str(caught.value)
    assert "missing mnist file(s) train-labels-idx1-ubyte (accepted: train-labels-idx1-ubyte.gz, " in message
    assert "train-images" not in message and "test_only=True" not in message  # test files are there, train not
    assert "\n" not in message


def test_only_test_files_suggests_test_only(idx_folder):
    folder, splits = idx_folder
    for path in folder.glob("train-*"):
        path.unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte .*train-labels-idx1-ubyte .*test_only=True"):
        load_fashion_mnist(folder)
    dataset = load_fashion_mnist(folder, test_only=True)
    assert len(dataset.y_train) == 0 and dataset.x_train.shape[1:] == (28, 28, 1)
    np.testing.assert_array_equal(dataset.y_test, splits["test"][1])
    assert dataset.label_dict[0] == "T-shirt/top" and dataset.label_dict[9] == "Ankle boot"


def test_empty_or_absent_folder(tmp_path):
    with pytest.raises(DataError, match=r"no MNIST files found; looked for mnist\.npz or the IDX files "
                                        r"train-images-idx3-ubyte\[\.gz\]"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="nowhere: mnist folder not found"):
        load_mnist(tmp_path / "nowhere")


def test_real_mnist(mnist_dir):
    dataset = load_mnist(mnist_dir)
    assert dataset.x_train.shape == (60000, 28, 28, 1) and dataset.x_test.shape == (10000, 28, 28, 1)
    assert dataset.class_counts("train").tolist() == MNIST_TRAIN_COUNTS
    assert dataset.class_counts("test").tolist() == MNIST_TEST_COUNTS
    assert dataset.x_train.mean() / 255 == pytest.approx(0.1306605, abs=1e-6)


def test_real_fashion_mnist_test_split(fashion_mnist_dir):
    with pytest.raises(DataError, match="test_only=True"):
        load_fashion_mnist(fashion_mnist_dir)
    dataset = load_fashion_mnist(fashion_mnist_dir, test_only=True)
    assert dataset.x_test.shape == (10000, 28, 28, 1)
    assert dataset.class_counts("test").tolist() == [1000] * 10
