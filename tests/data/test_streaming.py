"""QuickDraw streamed from memory-mapped files: per-class seeded splits, gathering, class lists, bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from NeuralNetworks import data
from NeuralNetworks.budget import Budget
from NeuralNetworks.data.errors import DataError
from NeuralNetworks.data.quickdraw import read_class_list
from NeuralNetworks.data.streaming import stream_quickdraw
from NeuralNetworks.nn import presets

ROWS = {"cat": 300, "apple": 200, "The Eiffel Tower": 101, "zebra": 50}


def class_rows(label: int, count: int) -> np.ndarray:
    """Rows whose first pixel is the class index and next two the row number, so every row is traceable."""
    rows = np.zeros((count, 784), np.uint8)
    rows[:, 0], rows[:, 1], rows[:, 2] = label, np.arange(count) % 256, np.arange(count) // 256
    return rows


@pytest.fixture
def doodle_dir(tmp_path: Path) -> Path:
    for label, (name, count) in enumerate(sorted(ROWS.items())):
        np.save(tmp_path / f"{name}.npy", class_rows(label, count))
    return tmp_path


def traced(split, index=None) -> list[tuple[int, int, int]]:
    """(label, file's class, row) of every drawing of a split."""
    images, labels = split.gather(np.arange(len(split)) if index is None else index)
    flat = images.reshape(len(images), -1).astype(int)
    return list(zip(labels.tolist(), flat[:, 0].tolist(), (flat[:, 1] + 256 * flat[:, 2]).tolist(), strict=True))


def test_splits_are_disjoint_cover_every_row_and_follow_the_fractions(doodle_dir):
    dataset = stream_quickdraw(doodle_dir, test_fraction=0.2, validation_fraction=0.1)
    names = sorted(ROWS)
    assert dataset.class_names == names and dataset.drawings == sum(ROWS.values())
    seen = {split: traced(getattr(dataset, split)) for split in ("train", "validation", "test")}
    rows = [(cls, row) for split in seen.values() for _, cls, row in split]
    assert len(rows) == len(set(rows)) == sum(ROWS.values())  # every drawing in exactly one split
    assert all(label == cls for split in seen.values() for label, cls, _ in split)  # labels follow sorted names
    for label, name in enumerate(names):
        n_test = round(0.2 * ROWS[name])
        assert dataset.test.counts[label] == n_test
        assert dataset.validation.counts[label] == round(0.1 * (ROWS[name] - n_test))
    images, _ = dataset.train.gather(np.array([0, 5]))
    assert images.shape == (2, 28, 28, 1) and images.dtype == np.uint8


def test_split_is_seeded_per_class_and_does_not_depend_on_the_other_classes(doodle_dir):
    def cat_test_rows(dataset):
        return sorted(row for label, _, row in traced(dataset.test) if dataset.class_names[label] == "cat")

    everything = stream_quickdraw(doodle_dir)
    assert cat_test_rows(everything) == cat_test_rows(stream_quickdraw(doodle_dir, classes=["cat"]))
    assert cat_test_rows(everything) == cat_test_rows(stream_quickdraw(doodle_dir, validation_fraction=0.3))
    assert cat_test_rows(everything) != cat_test_rows(stream_quickdraw(doodle_dir, seed=1))
    rows = cat_test_rows(everything)
    assert np.mean(rows) == pytest.approx(150, abs=30)  # spread over the file, not its first rows


def test_any_part_of_a_split_reads_the_same_drawings_as_the_whole(doodle_dir):
    split = stream_quickdraw(doodle_dir).train
    whole = traced(split)
    halves = traced(split, np.arange(0, len(split) // 2)) + traced(split, np.arange(len(split) // 2, len(split)))
    assert halves == whole


def test_max_per_class_uses_the_first_drawings(doodle_dir):
    dataset = stream_quickdraw(doodle_dir, max_per_class=40)
    assert all(row < 40 for split in ("train", "validation", "test") for *_, row in traced(getattr(dataset, split)))
    assert dataset.drawings == 160


def test_classes_all_or_a_file_give_sorted_labels(doodle_dir, tmp_path):
    assert stream_quickdraw(doodle_dir, classes="all").class_names == sorted(ROWS)
    listing = tmp_path / "classes.txt"
    listing.write_text("zebra\n# a comment\n\n  cat \napple\n")
    assert stream_quickdraw(doodle_dir, classes=str(listing)).class_names == ["apple", "cat", "zebra"]
    assert data.load_quickdraw(doodle_dir, classes=[listing]).class_names == ["apple", "cat", "zebra"]
    assert stream_quickdraw(doodle_dir, classes=["zebra", "cat"]).class_names == ["zebra", "cat"]  # as given


@pytest.mark.parametrize("content, message", [("", "list of classes is empty"),
                                              ("cat\ndog\n", r"unknown QuickDraw class\(es\) 'dog'")])
def test_a_bad_class_list_is_refused(doodle_dir, tmp_path, content, message):
    listing = tmp_path / "list.txt"
    listing.write_text(content)
    with pytest.raises(DataError, match=message):
        stream_quickdraw(doodle_dir, classes=str(listing))


def test_a_class_list_beyond_the_budget_is_refused_unread(doodle_dir, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("cat\n" * 100)
    with pytest.raises(DataError, match="larger than the budget"):
        read_class_list(listing, Budget(max_labels=10, max_name_chars=3))


@pytest.mark.parametrize("options, argument", [({"max_per_class": 0}, "max_per_class"),
                                               ({"test_fraction": 0.0}, "test_fraction"),
                                               ({"validation_fraction": 1.0}, "validation_fraction")])
def test_bad_options(doodle_dir, options, argument):
    with pytest.raises(ValueError, match=argument):
        stream_quickdraw(doodle_dir, **options)


def test_positions_outside_a_split_are_refused(doodle_dir):
    split = stream_quickdraw(doodle_dir).test
    with pytest.raises(IndexError, match=rf"\[0, {len(split)}\)"):
        split.gather(np.array([len(split)]))


def test_the_index_stays_small_whatever_the_number_of_drawings(tmp_path):
    for name in ("a", "b"):
        np.lib.format.open_memmap(tmp_path / f"{name}.npy", "w+", np.uint8, (100_000, 784))[:] = 1  # 78 MB each
    tracemalloc.start()
    try:
        dataset = stream_quickdraw(tmp_path)
        dataset.train.gather(np.arange(0, len(dataset.train), 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 500_000, f"opening and reading 160 drawings allocated {peak} bytes"


def test_catalog_streams_quickdraw_and_only_it(doodle_dir):
    dataset = data.stream("doodle", doodle_dir, max_per_class=20)
    assert dataset.name == "doodle" and dataset.preprocessing == "quickdraw" and len(dataset.test) == 16
    with pytest.raises(ValueError, match="cannot be streamed"):
        data.stream("mnist", doodle_dir)
    with pytest.raises(ValueError, match="does not take option"):
        data.stream("quickdraw", doodle_dir, test_only=True)


def test_a_model_trains_on_the_streamed_splits(tmp_path):
    for label, (name, count) in enumerate(sorted(ROWS.items())):
        rows = np.random.default_rng(label).integers(0, 64, (count, 784), dtype=np.uint8)
        rows[:, 100 * label:100 * label + 100] = 255  # a bright band says the class
        np.save(tmp_path / f"{name}.npy", rows)
    dataset = stream_quickdraw(tmp_path)
    model = presets.default_mlp(dataset.input_shape, dataset.num_classes, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(dataset.train, validation_data=dataset.validation, epochs=3, batch_size=32, verbose=0)
    assert history.history["val_accuracy"][-1] == 1.0
    assert model.evaluate(dataset.test, return_dict=True)["accuracy"] == 1.0


def test_real_quickdraw_streams(quickdraw_dir):
    dataset = data.stream("quickdraw", quickdraw_dir)
    assert dataset.drawings == 20_800 and dataset.num_classes == 10
    assert len(dataset.test) == sum(round(0.2 * n) for n in (2400,) * 6 + (800,) * 3 + (4000,))


def test_open_streams_a_folder_too_big_for_memory_and_loads_a_small_one(doodle_dir, monkeypatch):
    spec = data.catalog.find("quickdraw")
    assert isinstance(spec.open(doodle_dir), data.Dataset)
    assert isinstance(spec.open(doodle_dir, stream=True), data.StreamedDataset)
    monkeypatch.setattr(data.catalog, "STREAM_ABOVE_BYTES", 100 * 784)  # the folder holds 651 drawings
    assert isinstance(spec.open(doodle_dir), data.StreamedDataset)
    assert isinstance(spec.open(doodle_dir, stream=False), data.Dataset)
    assert isinstance(spec.open(doodle_dir, max_per_class=25), data.Dataset)  # 100 drawings: loaded
    with pytest.raises(ValueError, match="cannot be streamed from disk; only quickdraw can"):
        data.catalog.find("shapes").open(stream=True)


def test_confusion_matrix_by_batches_equals_the_whole_at_once(doodle_dir):
    from NeuralNetworks.nn import metrics

    split = stream_quickdraw(doodle_dir).test
    images, labels = split.gather(np.arange(len(split)))

    def predict(batch):  # a "model" whose guess is the first pixel, wrong for class 3
        return np.eye(4)[np.minimum(batch[:, 0, 0, 0], 2)]

    whole = metrics.confusion_matrix(labels, predict(images), num_classes=4)
    np.testing.assert_array_equal(metrics.confusion_matrix_by_batches(predict, split, 4, batch_size=7), whole)
    assert whole[3, 2] == split.counts[3] and np.trace(whole) == len(split) - split.counts[3]
