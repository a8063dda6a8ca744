"""QuickDraw numpy_bitmap folder loader: class selection, deterministic split, memory mapping, bad files."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks.data.errors import DataError
from NeuralNetworks.data.quickdraw import list_classes, load_quickdraw

ROWS = {"cat": 30, "apple": 20, "The Eiffel Tower": 10}
REAL_ROWS = {"apple": 2400, "bicycle": 2400, "car": 800, "cat": 2400, "diamond": 2400, "eye": 2400,
             "fish": 2400, "flower": 4000, "house": 800, "tree": 800}


def class_rows(label: int, count: int) -> np.ndarray:
    """Rows whose first pixel is the class index and second the row index, so every row is traceable."""
    rows = np.zeros((count, 784), np.uint8)
    rows[:, 0], rows[:, 1] = label, np.arange(count)
    return rows


@pytest.fixture
def doodle_dir(tmp_path: Path) -> Path:
    for label, (name, count) in enumerate(sorted(ROWS.items())):
        np.save(tmp_path / f"{name}.npy", class_rows(label, count))
    (tmp_path / "notes.txt").write_text("not a drawing")
    return tmp_path


def test_classes_sorted_and_labels_follow_them(doodle_dir):
    assert list_classes(doodle_dir) == ["The Eiffel Tower", "apple", "cat"]
    dataset = load_quickdraw(doodle_dir)
    assert dataset.label_dict == {0: "The Eiffel Tower", 1: "apple", 2: "cat"}
    for split in ("train", "test"):
        images, labels = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        np.testing.assert_array_equal(images[:, 0, 0, 0], labels)  # every image sits under its own class
    assert dataset.class_counts("test").tolist() == [2, 4, 6]   # 20% of 10, 20, 30
    assert dataset.class_counts("train").tolist() == [8, 16, 24]
    assert dataset.x_train.shape[1:] == (28, 28, 1) and dataset.x_train.dtype == np.uint8


def test_train_and_test_are_disjoint_and_cover_the_rows(doodle_dir):
    dataset = load_quickdraw(doodle_dir)
    ids = {split: {(int(image[0, 0, 0]), int(image[0, 1, 0])) for image in getattr(dataset, f"x_{split}")}
           for split in ("train", "test")}
    assert not ids["train"] & ids["test"]
    assert len(ids["train"] | ids["test"]) == sum(ROWS.values())


def test_split_is_deterministic_and_seeded(doodle_dir):
    first, again = load_quickdraw(doodle_dir, seed=0), load_quickdraw(doodle_dir, seed=0)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    other = load_quickdraw(doodle_dir, seed=1)
    assert not np.array_equal(np.sort(first.x_test[:, 0, 1, 0]), np.sort(other.x_test[:, 0, 1, 0]))


def test_a_class_split_does_not_depend_on_the_other_classes(doodle_dir):
    def cat_test_rows(dataset):
        cat = dataset.class_names.index("cat")
        return sorted(dataset.x_test[dataset.y_test == cat, 0, 1, 0].tolist())
    assert cat_test_rows(load_quickdraw(doodle_dir)) == cat_test_rows(load_quickdraw(doodle_dir, classes=["cat"]))


def test_chosen_classes_and_max_per_class(doodle_dir):
    dataset = load_quickdraw(doodle_dir, classes=["cat", "apple"], max_per_class=10, test_fraction=0.3)
    assert dataset.label_dict == {0: "cat", 1: "apple"}
    assert dataset.class_counts("train").tolist() == [7, 7] and dataset.class_counts("test").tolist() == [3, 3]
    assert dataset.x_train[:, 0, 1, 0].max() < 10  # only the first 10 drawings of a class are used


def test_unknown_class_lists_available(doodle_dir):
    with pytest.raises(DataError, match=r"unknown QuickDraw class\(es\) 'dog'; available: The Eiffel Tower, "
                                        r"apple, cat"):
        load_quickdraw(doodle_dir, classes=["cat", "dog"])


def test_test_only_skips_training_rows(doodle_dir):
    dataset = load_quickdraw(doodle_dir, test_only=True)
    assert len(dataset.y_train) == 0
    np.testing.assert_array_equal(dataset.x_test, load_quickdraw(doodle_dir).x_test)


def test_large_file_is_memory_mapped_not_read(tmp_path):
    big_rows = 25_000  # 19.6 MB on disk
    np.save(tmp_path / "big.npy", np.ones((big_rows, 784), np.uint8))
    tracemalloc.start()
    try:
        dataset = load_quickdraw(tmp_path, max_per_class=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"loading 50 rows allocated {peak} bytes: the whole file was read"
    assert len(dataset.y_train) + len(dataset.y_test) == 50
    assert type(dataset.x_train) is np.ndarray
    assert not isinstance(dataset.x_train.base, np.memmap)


@pytest.mark.parametrize("array, expected", [
    (np.zeros((3, 100), np.uint8), r"bad\.npy: array is uint8 of shape \(3, 100\), expected uint8 of shape \(N, 784\)"),
    (np.zeros((3, 784), np.float32), r"bad\.npy: array is float32 of shape \(3, 784\)"),
])
def test_wrong_shape_or_dtype_names_the_file(tmp_path, array, expected):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=expected):
        load_quickdraw(tmp_path)


def test_28x28_rows_are_accepted(tmp_path):
    np.save(tmp_path / "square.npy", np.full((5, 28, 28), 9, np.uint8))
    assert load_quickdraw(tmp_path).x_train.shape == (4, 28, 28, 1)


def test_truncated_or_garbage_file(tmp_path):
    np.save(tmp_path / "cut.npy", np.zeros((10, 784), np.uint8))
    path = tmp_path / "cut.npy"
    path.write_bytes(path.read_bytes()[:-784 * 3])
    with pytest.raises(DataError, match=r"cut\.npy: not a readable \.npy file"):
        load_quickdraw(tmp_path)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(DataError, match=r"cut\.npy: not a readable \.npy file"):
        load_quickdraw(tmp_path)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"objects\.npy: not a readable \.npy file"):
        load_quickdraw(tmp_path)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no <class>.npy files found"):
        load_quickdraw(tmp_path)
    with pytest.raises(DataError, match="absent: QuickDraw folder not found"):
        load_quickdraw(tmp_path / "absent")


@pytest.mark.parametrize("options, argument", [
    ({"max_per_class": 0}, "max_per_class"), ({"test_fraction": 1.0}, "test_fraction"),
])
def test_bad_options(doodle_dir, options, argument):
    with pytest.raises(ValueError, match=argument):
        load_quickdraw(doodle_dir, **options)


def test_real_quickdraw(quickdraw_dir):
    dataset = load_quickdraw(quickdraw_dir)
    assert dataset.class_names == sorted(REAL_ROWS)
    totals = dataset.class_counts("train") + dataset.class_counts("test")
    assert dict(zip(dataset.class_names, totals.tolist(), strict=True)) == REAL_ROWS
    assert dataset.class_counts("test").tolist() == [round(0.2 * REAL_ROWS[name]) for name in dataset.class_names]
    subset = load_quickdraw(quickdraw_dir, classes=["cat", "tree"], max_per_class=100)
    assert subset.class_counts("train").tolist() == [80, 80] and subset.x_test.shape == (40, 28, 28, 1)


def test_npz_archive_under_npy_name(tmp_path):
    with open(tmp_path / "fake.npy", "wb") as stream:
        np.savez(stream, x=np.zeros((2, 784), np.uint8))
    with pytest.raises(DataError, match=r"fake\.npy: expected a \.npy array of shape \(N, 784\), found an \.npz"):
        load_quickdraw(tmp_path)
