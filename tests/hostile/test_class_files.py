"""What a folder of class files can do: one class (or a class with nothing to train on), two files for one class,
a header that claims fewer rows than the file holds, and a file truncated or rewritten while a streamed run reads
it. Each is a named DataError before or instead of training (never a silent choice, an accuracy of 0, or SIGBUS),
and a run stopped so keeps its last checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from NeuralNetworks import data
from NeuralNetworks.cli import main
from NeuralNetworks.data import ClassCountError, DataError, require_classes
from NeuralNetworks.data.quickdraw import BitmapFile

ROWS = 60


def class_file(path, rows=ROWS, value=1):
    np.save(path, np.full((rows, 784), value, dtype=np.uint8))
    return path


def folder_of(tmp_path, *names, rows=ROWS):
    folder = tmp_path / "doodles"
    folder.mkdir()
    for value, name in enumerate(names):
        class_file(folder / f"{name}.npy", rows, value)
    return folder


# -- classes to train on ----------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(counts=st.lists(st.integers(0, 5), max_size=8))
def test_require_classes_accepts_exactly_two_or_more_classes_that_all_have_samples(counts):
    names = [f"class{i}" for i in range(len(counts))]
    if len(counts) >= 2 and min(counts) > 0:
        require_classes("set", names, counts)
    else:
        with pytest.raises(ClassCountError, match=r"^set: (only the class|no class|no training sample for)"):
            require_classes("set", names, counts)


def test_the_message_lists_a_few_names_not_thousands():
    names = [f"c{i}" for i in range(3000)]
    with pytest.raises(ClassCountError) as caught:
        require_classes("folder", names, [0] * 3000)
    assert "3000 of 3000 classes" in str(caught.value) and "and 2995 more" in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("stream", [False, True])
def test_one_class_is_refused_before_training(tmp_path, capsys, stream):
    folder = folder_of(tmp_path, "apple", "banana")
    for classes in (["--classes", "apple"], ["--classes", "all"]):
        if classes[1] == "all":
            (folder / "banana.npy").unlink()
        code = main(["train", "--dataset", "quickdraw", "--data-dir", str(folder), *classes, "--epochs", "1",
                     "--out", str(tmp_path / "m.npz"), *(["--stream"] if stream else [])])
        out, err = capsys.readouterr()
        assert code == 2 and "only the class 'apple'" in err and "at least 2 classes" in err
        assert out == "" and not (tmp_path / "m.npz").exists()  # refused before anything was printed or saved


@pytest.mark.parametrize("stream", [False, True])
def test_thousands_of_tiny_classes_are_refused_before_any_label_is_printed(tmp_path, capsys, stream):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for number in range(3000):
        np.save(folder / f"c{number}.npy", np.ones((1, 784), np.uint8))
    code = main(["train", "--dataset", "quickdraw", "--data-dir", str(folder), "--classes", "all", "--epochs", "1",
                 "--out", str(tmp_path / "m.npz"), *(["--stream"] if stream else [])])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and len(err) < 400


def test_a_class_with_no_training_sample_is_refused():
    images = np.zeros((4, 28, 28, 1), np.uint8)
    dataset = data.Dataset(images, np.array([0, 1, 0, 1]), images, np.array([0, 1, 2, 2]),
                           {0: "apple", 1: "banana", 2: "cherry"}, name="fruit")
    with pytest.raises(ClassCountError, match=r"^fruit: no training sample for 1 of 3 classes \('cherry'\)"):
        require_classes(dataset.name, dataset.class_names, dataset.class_counts("train"))


# -- the files of a folder ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("load", [data.load_quickdraw, data.stream_quickdraw])
def test_two_files_for_one_class_are_refused_naming_both(tmp_path, load):
    folder = folder_of(tmp_path, "cat", "dog")
    class_file(folder / "full_numpy_bitmap_cat.npy")
    with pytest.raises(DataError, match=r"cat\.npy and .*full_numpy_bitmap_cat\.npy both hold class 'cat'"):
        load(folder)


def test_a_header_claiming_fewer_rows_than_the_file_holds_is_refused(tmp_path):
    folder = folder_of(tmp_path, "cat", "dog")
    with open(folder / "cat.npy", "ab") as handle:
        handle.write(bytes(784 * 3))  # three rows the header does not announce
    for load in (data.load_quickdraw, data.stream_quickdraw):
        with pytest.raises(DataError, match=r"cat\.npy: the header announces 60 drawings .* holds 49392 bytes"):
            load(folder)


@pytest.mark.parametrize("change", ["truncate", "rewrite", "grow"])
def test_a_file_changed_while_it_is_read_is_a_named_error(tmp_path, change):
    path = class_file(tmp_path / "cat.npy")
    bitmaps = BitmapFile(path)
    np.testing.assert_array_equal(bitmaps.read(np.array([0, 59])), np.ones((2, 784), np.uint8))
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        if change == "truncate":
            handle.truncate(size // 2)
        elif change == "grow":
            handle.seek(0, os.SEEK_END)
            handle.write(bytes(784))
        else:
            handle.seek(size - 10)
            handle.write(b"x" * 10)
    if change == "rewrite":  # same size: the modification time tells (set it apart from the first one)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=r"cat\.npy: the file changed while it was being read"):
        bitmaps.read(np.array([59]))
    bitmaps.close()


RUN = """
import sys
from pathlib import Path
from NeuralNetworks import data
from NeuralNetworks.nn import callbacks, presets
folder, checkpoint = Path(sys.argv[1]), Path(sys.argv[2])

class Truncate(callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            with open(folder / "dog.npy", "r+b") as handle:
                handle.truncate(1000)

dataset = data.stream_quickdraw(folder)
model = presets.default_mlp(dataset.input_shape, dataset.num_classes, seed=0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
try:
    model.fit(dataset.train, epochs=3, batch_size=16, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(checkpoint), Truncate()])
except data.DataError as error:
    print(f"error: {error}")
    sys.exit(2)
"""


def test_a_streamed_run_whose_file_is_truncated_stops_by_name_and_keeps_its_checkpoint(tmp_path):
    folder = folder_of(tmp_path, "cat", "dog", rows=400)
    checkpoint = tmp_path / "checkpoint.npz"
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(RUN), str(folder), str(checkpoint)],
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 2, (completed.returncode, completed.stderr[-2000:])  # not -7 (SIGBUS)
    assert "dog.npy: the file changed while it was being read" in completed.stdout
    from NeuralNetworks.nn import models

    assert models.load(checkpoint).count_params() > 0  # epoch 1's weights, intact
