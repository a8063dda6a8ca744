"""Property-based tests (Hypothesis) over the API, the model file format and the loaders: whatever the input, the
answer is a correct result or a named error (ValueError/TypeError, ModelFileError, DataError), never another
exception, a non-finite result, or a file changed. Bounded and derandomized, so CI is fast and stable."""

from __future__ import annotations

import gzip
import io
import json
import warnings
import zipfile

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hostile_files import contents, small_model, write_model
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from NeuralNetworks.data import DataError
from NeuralNetworks.data.mnist import read_idx
from NeuralNetworks.nn import layers, models, saving

BOUNDED = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAMED = (ValueError, TypeError)


@pytest.fixture(scope="module")
def model():
    network = models.Sequential(seed=0)
    network.add(layers.Flatten(input_shape=(3, 2)))
    network.add(layers.Dense(4, activation="relu"))
    network.add(layers.Dense(3, activation="softmax"))
    network.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return network


DTYPES = st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                   hnp.floating_dtypes(), hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=2))
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))


@BOUNDED
@given(x=ARRAYS, batch_size=st.one_of(st.none(), st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=2)))
def test_predict_returns_finite_scores_or_names_the_problem(model, x, batch_size):
    try:
        scores = model.predict(x, batch_size=batch_size)
    except NAMED:
        return
    assert scores.shape == (len(x), 3) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)


@BOUNDED
@given(x=ARRAYS, y=ARRAYS, epochs=st.sampled_from([1, 0, -1, 1.5, "2", None]))
def test_fit_and_evaluate_train_or_name_the_problem(model, x, y, epochs):
    weights = model.get_weights()
    try:
        model.fit(x, y, epochs=epochs, batch_size=2, verbose=0)
    except FloatingPointError:  # a loss that diverged on huge inputs (NonFiniteError, a ValueError too)
        model.set_weights(weights)
    except NAMED:  # refused before training: nothing changed
        assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
    try:
        loss = model.evaluate(x, y)
    except NAMED:
        return
    assert np.isfinite(loss)


LAYER_STACKS = st.lists(st.sampled_from(["dense", "relu-dense", "dropout", "batchnorm", "activation"]),
                        min_size=0, max_size=3)


@BOUNDED
@given(stack=LAYER_STACKS, units=st.integers(1, 5), labels=st.booleans(), optimizer=st.sampled_from(
    ["sgd", "adam", "adamw", "rmsprop", "adagrad"]), dtype=st.sampled_from(["float32", "float64"]), trained=st.booleans())
def test_any_model_the_api_builds_saves_and_loads_identically(tmp_path_factory, stack, units, labels, optimizer, dtype,
                                                              trained):
    model = models.Sequential(seed=1, dtype=dtype)
    model.add(layers.Flatten(input_shape=(2, 2)))
    for kind in stack:
        model.add({"dense": lambda: layers.Dense(units), "relu-dense": lambda: layers.Dense(units, activation="relu"),
                   "dropout": lambda: layers.Dropout(0.2), "batchnorm": lambda: layers.BatchNormalization(),
                   "activation": lambda: layers.Activation("tanh")}[kind]())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((8, 2, 2))
    if trained:
        model.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    path = model.save(tmp_path_factory.mktemp("any") / "m.npz", labels=["a", "b", "c"] if labels else None)
    loaded = models.load(path)
    assert loaded.get_config() == model.get_config() and loaded.labels == model.labels
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    path = small_model(batch_normalization=True).save(tmp_path_factory.mktemp("bytes") / "m.npz", labels=["a", "b", "c"])
    return path.read_bytes()


@BOUNDED
@given(data=st.data())
def test_a_damaged_model_file_loads_or_is_refused_by_name(tmp_path_factory, model_bytes, data):
    damaged = bytearray(model_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(damaged))))
    path = tmp_path_factory.mktemp("damaged") / "m.npz"
    path.write_bytes(bytes(damaged[:cut]))
    try:
        loaded = models.load(path)
    except saving.ModelFileError as error:
        assert "\n" not in str(error)
        return
    try:  # what loads predicts finite scores, or says its arithmetic overflowed
        assert np.isfinite(loaded.predict(np.full((2, 28, 28, 1), 128.0))).all()
    except models.NonFiniteOutputError:
        pass


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3), max_leaves=8)


def leaves(value, path=()):
    """Every (path, value) in nested JSON data."""
    yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from leaves(child, (*path, key))


@BOUNDED
@given(data=st.data())
def test_any_change_to_a_config_entry_loads_or_is_refused_by_name(tmp_path_factory, model_bytes, data):
    source = tmp_path_factory.mktemp("config") / "source.npz"
    source.write_bytes(model_bytes)
    config, arrays = contents(source)
    paths = [path for path, _ in leaves(config) if path]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:  # an earlier change may have replaced this entry's parent: then there is nothing left to change
            target = config
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        raw = json.dumps(config).encode()
    except ValueError:
        assume(False)
    path = write_model(source.with_name("m.npz"), None, arrays, config_bytes=raw)
    try:
        loaded = models.load(path)
    except saving.ModelFileError as error:
        assert "\n" not in str(error)
        return
    try:
        assert np.isfinite(loaded.predict(np.full((1, 28, 28, 1), 128.0))).all()
    except models.NonFiniteOutputError:
        pass


@BOUNDED
@given(magic=st.sampled_from([0x0801, 0x0803, 0x0800, 0x0C03, 0x0805, 0xFFFFFFFF]), dims=st.lists(
    st.integers(0, 2**32 - 1) | st.integers(0, 5), max_size=5), payload=st.binary(max_size=64), gzipped=st.booleans())
def test_any_idx_file_is_read_as_its_header_says_or_refused(tmp_path_factory, magic, dims, payload, gzipped):
    content = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload
    path = tmp_path_factory.mktemp("idx") / "f"
    path.write_bytes(gzip.compress(content) if gzipped else content)
    try:
        array = read_idx(path)
    except DataError as error:
        assert "\n" not in str(error)
        return
    words = content[4:4 + 4 * (magic & 0xFF)]  # the header announces magic & 0xFF dimensions; the rest is data
    assert array.dtype == np.uint8 and array.shape == tuple(int.from_bytes(words[i:i + 4], "big")
                                                            for i in range(0, len(words), 4))
    assert array.tobytes() == content[4 + len(words):]


@BOUNDED
@given(header=st.dictionaries(st.sampled_from(["descr", "fortran_order", "shape", "other"]),
                              st.one_of(st.sampled_from(["|u1", "<f4", "|O", "<U3", "|V8"]), st.booleans(),
                                        st.lists(st.integers(-1, 10**12), max_size=3).map(tuple))),
       payload=st.binary(max_size=64))
def test_any_npy_class_file_is_read_or_refused(tmp_path_factory, header, payload):
    from NeuralNetworks.data.quickdraw import load_quickdraw

    text = repr(header).encode("latin1")
    folder = tmp_path_factory.mktemp("npy")
    (folder / "cat.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload)
    try:
        dataset = load_quickdraw(folder, test_fraction=0.5)
    except DataError as error:
        assert "\n" not in str(error)
        return
    assert dataset.class_names == ["cat"] and dataset.x_test.dtype == np.uint8


@BOUNDED
@given(members=st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=40)), max_size=5),
       compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_any_zip_archive_is_refused_by_name(tmp_path_factory, members, compression):
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names it is asked to write
        for name, data in members:
            try:
                archive.writestr(name, data)
            except (ValueError, IndexError):  # a name zipfile itself cannot write ("", "/")
                continue
    path = tmp_path_factory.mktemp("zip") / "m.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(saving.ModelFileError) as caught:
        models.load(path)
    assert "\n" not in str(caught.value)
