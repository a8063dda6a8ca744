"""Hostile dataset files and arguments: IDX headers that lie, gzip bombs, pickled or oversized .npy files, class
names that are paths. Each gives a one-line DataError (or ValueError naming the argument) before allocating what
the file claims; nothing is written outside the data folder."""

from __future__ import annotations

import gzip
import os
import zipfile

import numpy as np
import pytest
from hostile_files import npy_bytes, npy_header, write_members

from NeuralNetworks import data
from NeuralNetworks.budget import Budget
from NeuralNetworks.data import DataError, download
from NeuralNetworks.data.mnist import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, load_idx_pair, load_mnist, read_idx
from NeuralNetworks.data.quickdraw import load_quickdraw

GIB = 1 << 30


def idx(magic: int, dims: tuple[int, ...], payload: bytes = b"") -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def refused(call, pattern, error=DataError):
    with pytest.raises(error, match=pattern) as caught:
        call()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("content", "pattern"), [
    (idx(0x0803, (0xFFFFFFFF, 28, 28)), r"header announces 4294967295x28x28 = .* more than the budget"),
    (idx(0x0803, (60000, 28, 28), b"\0" * 100), r"truncated, the header announces 60000x28x28 = 47040000 bytes of "
                                               r"data but the file holds 100"),
    (idx(0x0803, (2, 2, 2), b"\0" * 9), r"trailing bytes after the 8 bytes"),
    (idx(0x0D03, (2, 2, 2), b"\0" * 8), r"bad magic number 0x00000d03, expected 0x000008NN"),
    (idx(0x0805, (1, 1, 1, 1, 1), b"\0"), r"bad magic number 0x00000805"),
    (idx(0x0800, ()), r"bad magic number 0x00000800"),
    (b"\x00\x00\x08", r"file ends inside the IDX header"),
    (idx(0x0803, (2, 2)), r"bad magic number|expected 3 dimensions|file ends inside"),
], ids=["claims-4g-items", "claims-more-than-the-file", "trailing", "float-type", "five-dims", "zero-dims",
        "short-header", "short-dims"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_lying_idx_headers(tmp_path, content, pattern, gzipped):
    path = tmp_path / ("f.gz" if gzipped else "f")
    path.write_bytes(gzip.compress(content) if gzipped else content)
    refused(lambda: read_idx(path), pattern)


def test_a_gzip_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(idx(0x0803, (4096, 64, 64)))
        for _ in range(16):
            stream.write(bytes(1 << 20))
    refused(lambda: read_idx(path, budget=Budget(inflation_floor_bytes=1 << 20)),
            r"of gzip data whose header announces 16 MiB \(a decompression bomb\?\)")


def test_idx_pairs_that_disagree(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.write_bytes(idx(IDX_IMAGES_MAGIC, (3, 2, 2), bytes(12)))
    labels.write_bytes(idx(IDX_LABELS_MAGIC, (2,), bytes([0, 1])))
    refused(lambda: load_idx_pair(images, labels), r"2 labels for the 3 images")
    labels.write_bytes(idx(IDX_LABELS_MAGIC, (3,), bytes([0, 1, 200])))
    refused(lambda: load_idx_pair(images, labels, num_classes=10), r"label 200 outside the expected 0..9")
    images.write_bytes(idx(IDX_IMAGES_MAGIC, (0, 28, 28)))
    refused(lambda: load_idx_pair(images, labels), r"none of them 0")


def test_idx_paths_that_are_not_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    refused(lambda: read_idx(tmp_path / "fifo"), r"expected a regular IDX file, found a FIFO")
    refused(lambda: read_idx("/dev/zero"), r"found a character device")
    refused(lambda: read_idx(tmp_path), r"found a folder|expected a IDX file")
    refused(lambda: read_idx(tmp_path / "missing"), r"no such IDX file")


def mnist_npz(path, **arrays):
    members = [(f"{key}.npy", value if isinstance(value, bytes) else npy_bytes(value)) for key, value in arrays.items()]
    return write_members(path, members, zipfile.ZIP_DEFLATED)


GOOD = {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.zeros(2, np.uint8),
        "x_test": np.zeros((1, 28, 28), np.uint8), "y_test": np.zeros(1, np.uint8)}


@pytest.mark.parametrize(("change", "pattern"), [
    ({"x_train": npy_header("|u1", (10**9, 28, 28), bytes(64))}, r"declares \(1000000000, 28, 28\) uint8"),
    ({"x_test": np.array([{"a": 1}], object)}, r"'x_test' has dtype object"),
    ({"y_test": np.zeros(1, np.complex64)}, r"'y_test' has dtype complex64"),
    ({"y_test": np.zeros(2, np.uint8)}, r"y_test is uint8 of shape \(2,\), expected integers of shape \(1,\)"),
    ({"y_test": np.array([12], np.uint8)}, r"y_test holds labels outside 0..9"),
    ({"x_test": np.zeros((1, 28), np.uint8)}, r"x_test is uint8 of shape \(1, 28\)"),
    ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}, r"x_test is uint8 of shape \(0,"),
    ({"zeros": npy_header("<f4", (1 << 22,), bytes(1 << 24))}, r"a decompression bomb"),
], ids=["huge-header", "pickled", "complex", "count-mismatch", "label-range", "rank", "empty", "bomb"])
def test_hostile_mnist_npz(tmp_path, change, pattern):
    path = mnist_npz(tmp_path / "mnist.npz", **{**GOOD, **change})
    refused(lambda: load_mnist(path, budget=Budget(inflation_floor_bytes=1 << 20)), pattern)


def quickdraw_folder(tmp_path, **files):
    folder = tmp_path / "qd"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / f"{name}.npy").write_bytes(content if isinstance(content, bytes) else npy_bytes(content))
    return folder


@pytest.mark.parametrize(("content", "pattern"), [
    (np.array([{"a": 1}], object), r"cat\.npy: not a readable \.npy file"),
    (np.zeros((3, 784), np.float32), r"array is float32 of shape \(3, 784\), expected uint8"),
    (np.zeros((3, 10), np.uint8), r"shape \(3, 10\)"),
    (np.zeros((0, 784), np.uint8), r"holds no drawings"),
    (npy_header("|u1", (10**12, 784)), r"not a readable \.npy file"),
    (b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little") + b"{" * 60000, r"not a readable \.npy file"),
    (b"", r"not a readable \.npy file"),
], ids=["pickled", "float", "wrong-shape", "empty", "header-claims-too-much", "huge-header", "zero-bytes"])
def test_hostile_quickdraw_files(tmp_path, content, pattern):
    folder = quickdraw_folder(tmp_path, cat=content)
    refused(lambda: load_quickdraw(folder), pattern)


def test_quickdraw_paths_and_class_names(tmp_path):
    folder = quickdraw_folder(tmp_path, cat=np.zeros((4, 784), np.uint8))
    os.mkfifo(folder / "dog.npy")
    refused(lambda: load_quickdraw(folder), r"dog\.npy: expected a regular QuickDraw file, found a FIFO")
    (folder / "dog.npy").unlink()
    (folder / "dog.npy").symlink_to("/dev/zero")
    refused(lambda: load_quickdraw(folder, classes=["dog"]), r"found a character device")
    (folder / "dog.npy").unlink()
    for name in ["../cat", "/etc/passwd", "cat\x00", "..", ".cat", "a/b"]:
        refused(lambda name=name: load_quickdraw(folder, classes=[name]), r"`classes` to be a name", ValueError)
    (folder / "c\x1b[2J.npy").write_bytes(npy_bytes(np.zeros((2, 784), np.uint8)))
    refused(lambda: load_quickdraw(folder), r"cannot be a class: .* rename the file")
    (folder / "c\x1b[2J.npy").unlink()
    refused(lambda: load_quickdraw(folder, budget=Budget(max_dataset_bytes=3 * 784)), r"more than the budget's")
    assert load_quickdraw(folder, max_per_class=3).class_names == ["cat"]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(lambda: load_quickdraw(empty), r"no <class>.npy files found")


@pytest.mark.parametrize(("options", "pattern", "error"), [
    ({"max_per_class": 0}, r"positive integer `max_per_class`. Received: max_per_class=0", ValueError),
    ({"max_per_class": -1}, r"max_per_class=-1", ValueError),
    ({"max_per_class": 2.5}, r"max_per_class=2.5", ValueError),
    ({"test_fraction": float("nan")}, r"test_fraction", ValueError),
    ({"test_fraction": 1.0}, r"test_fraction", ValueError),
    ({"seed": -1}, r"non-negative integer `seed`", ValueError),
    ({"classes": 5}, r"`classes` to be a list", TypeError),
])
def test_quickdraw_arguments(tmp_path, options, pattern, error):
    folder = quickdraw_folder(tmp_path, cat=np.zeros((4, 784), np.uint8))
    refused(lambda: load_quickdraw(folder, **options), pattern, error)


@pytest.mark.parametrize(("options", "pattern", "error"), [
    ({"samples_per_class": 10**9}, r"take \d+.* more than the budget's max_dataset_bytes", DataError),
    ({"samples_per_class": 0}, r"samples_per_class", ValueError),
    ({"seed": -5}, r"`seed`", ValueError),
    ({"classes": [["circle"]]}, r"`classes` to be a list of class names", TypeError),
    ({"classes": ["../circle"]}, r"unknown class", DataError),
])
def test_generated_set_arguments(options, pattern, error):
    refused(lambda: data.load("shapes", **options), pattern, error)


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", "..", ".hidden", "cat\x00", "x\\y", "c\nd", "a" * 200])
def test_download_class_names_never_leave_the_folder(tmp_path, name):
    folder = tmp_path / "data"
    before = set(tmp_path.rglob("*"))
    refused(lambda: download.download_quickdraw([name], folder, base_urls=["http://127.0.0.1:9/"], progress=False),
            r"`classes` to be a name of letters", ValueError)
    assert set(tmp_path.rglob("*")) == before  # nothing written, not even the folder
