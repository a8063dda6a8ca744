"""Your own CSV table as a dataset: types and task, imputation or dropped rows, statistics from the training
split only, the spec applied to new rows, and errors that name the row and the column."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from NeuralNetworks import data
from NeuralNetworks.data import preprocessing
from NeuralNetworks.data.errors import DataError
from NeuralNetworks.data.table import TableError, encode, load_table, read_table
from own_data_support import make_table


@pytest.fixture
def table(tmp_path):
    return make_table(tmp_path / "things.csv")


def write(path, header, rows):
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_a_text_target_is_a_classification_with_imputed_columns_and_indicators(table):
    dataset = data.load("csv", path=table, target="kind", validation_fraction=0.1)
    spec = dataset.preprocessing
    assert dataset.task == "classification" and dataset.class_names == ["big", "small"]
    columns = {column["name"]: column for column in spec["columns"]}
    assert list(columns) == ["size", "weight", "colour", "price"]
    assert columns["size"]["indicator"] and columns["colour"]["indicator"] and not columns["weight"]["indicator"]
    assert columns["colour"]["categories"] == ["blue", "green", "red"]
    # size (1 + indicator), weight, colour (3 + indicator), price
    assert dataset.input_shape == (2 + 1 + 4 + 1,)
    assert len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test) == 240
    assert np.isfinite(dataset.x_train).all() and dataset.x_train.dtype == np.float32


def test_statistics_come_from_the_training_split_only(table):
    dataset = load_table(table, target="kind")
    weight = next(column for column in dataset.preprocessing["columns"] if column["name"] == "weight")
    standardised = dataset.x_train[:, 2]  # size, its indicator, then weight
    assert abs(standardised.mean()) < 1e-5 and abs(standardised.std() - 1) < 1e-4
    assert abs(dataset.x_test[:, 2].mean()) > 1e-4  # the test rows were not used to centre them
    header, rows = read_table(table)
    values = np.array([float(row[1]) for row in rows])
    assert weight["center"] != pytest.approx(values.mean(), abs=1e-9)


def test_dropna_drops_and_counts_and_a_float_target_is_a_regression(table):
    dropped = load_table(table, target="kind", dropna=True)
    assert any("--dropna: dropped 40 row(s)" in note for note in dropped.notes)
    assert not any(column["indicator"] for column in dropped.preprocessing["columns"])
    regression = load_table(table, target="price")
    assert regression.task == "regression" and regression.num_classes == 0
    assert abs(regression.y_train.mean()) < 1e-5  # the target is standardised too
    assert load_table(table, target="weight", task="regression").task == "regression"


def test_integer_targets_are_classes(tmp_path):
    path = write(tmp_path / "t.csv", ["x", "y"], [[str(i), str(i % 3)] for i in range(30)])
    assert load_table(path, target="y").class_names == ["0", "1", "2"]


def test_new_rows_are_encoded_by_the_spec_and_bad_cells_are_named_by_row_and_column(table, tmp_path):
    spec = load_table(table, target="kind").preprocessing
    header = ["colour", "weight", "size", "price"]  # any order, no target needed
    x = encode(header, [["red", "50", "10", "40"], ["", "NA", "", "40"]], spec)
    assert x.shape == (2, 8) and np.isfinite(x).all()
    with pytest.raises(TableError, match="row 2, column 'colour': unseen category 'purple'"):
        encode(header, [["red", "50", "10", "40"], ["purple", "50", "10", "40"]], spec)
    with pytest.raises(TableError, match="row 1, column 'weight': 'heavy' is not a number"):
        encode(header, [["red", "heavy", "10", "40"]], spec)
    with pytest.raises(TableError, match="no column 'size'"):
        encode(["colour", "weight", "price"], [["red", "1", "2"]], spec)


@pytest.mark.parametrize("rows, target, message", [
    ([["1", "a"], ["2", "a"], ["3", "a"], ["4", "a"]], "y", "only the class 'a'; a classifier needs at least 2"),
    ([["1", "2.5"], ["2", "2.5"], ["3", "2.5"]], "y", "the target has a single value"),
    ([["1", "a"], ["2", "b"]], "z", "no column 'z' to predict"),
])
def test_tables_that_cannot_be_learnt_are_refused_up_front(tmp_path, rows, target, message):
    path = write(tmp_path / "t.csv", ["x", "y"], rows)
    with pytest.raises(DataError, match=message):
        load_table(path, target=target)


def test_malformed_files_are_refused_naming_the_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,a\n2\n")
    with pytest.raises(TableError, match="row 2: 1 cells, the header has 2 columns"):
        read_table(path)
    path.write_bytes(b"x,y\n\xff\xfe,1\n")
    with pytest.raises(TableError, match="not UTF-8"):
        read_table(path)
    path.write_text("x,x\n1,2\n")
    with pytest.raises(TableError, match="'x' appears twice"):
        read_table(path)


def test_a_model_reads_the_same_test_split_with_its_own_statistics(table):
    trained = load_table(table, target="kind", seed=3)
    tested = load_table(table, target="kind", seed=3, preprocessing=trained.preprocessing,
                        labels=trained.class_names, test_only=True)
    np.testing.assert_array_equal(tested.x_test, trained.x_test)
    np.testing.assert_array_equal(tested.y_test, trained.y_test)


@pytest.mark.parametrize("change, message", [
    ({"task": "clustering"}, "task must be one of"),
    ({"columns": []}, "columns must be a list of 1 to"),
    ({"target_scale": 0}, "target_scale must be a finite positive number"),
    ({"dropna": None}, "dropna must be true or false"),
])
def test_a_hostile_table_spec_is_refused_by_name(table, change, message):
    spec = dict(load_table(table, target="kind").preprocessing, **change)
    with pytest.raises((TypeError, ValueError), match=message):
        preprocessing.check(spec)
