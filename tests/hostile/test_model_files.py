"""Hostile model files: each is refused with a one-line ModelFileError naming the file and what was wrong, before
any layer is built or any array beyond the headers is read; valid variations still load."""

from __future__ import annotations

import json
import os
import re
import zipfile

import numpy as np
import pytest
from hostile_files import (
    LABELS,
    contents,
    forge_entry_count,
    layer_config,
    members_of,
    npy_bytes,
    npy_header,
    set_zip_flag,
    small_model,
    write_members,
    write_model,
)

from NeuralNetworks.budget import Budget
from NeuralNetworks.nn import layers, models, saving
from NeuralNetworks.nn.layers.base import Layer


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(config, arrays) of a valid trained CNN with Adam slots, and of one with BatchNormalization."""
    folder = tmp_path_factory.mktemp("good")
    plain = small_model().save(folder / "plain.npz", labels=LABELS)
    normalized = small_model(batch_normalization=True).save(folder / "bn.npz", labels=LABELS)
    return {"plain": contents(plain), "bn": contents(normalized)}


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Fail the test if a layer allocates a weight: hostile files must be refused before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("a layer was built from a file that should have been refused first")

    monkeypatch.setattr(Layer, "add_weight", refuse)


def rejected(path, pattern, budget=None):
    with pytest.raises(saving.ModelFileError) as caught:
        models.load(path, budget=budget)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    assert re.search(pattern, message), message
    return message


def edited(good, tmp_path, edit_config=None, edit_arrays=None, kind="plain"):
    config, arrays = good[kind]
    config, arrays = json.loads(json.dumps(config)), dict(arrays)
    if edit_config:
        edit_config(config)
    if edit_arrays:
        edit_arrays(arrays)
    return write_model(tmp_path / "m.npz", config, arrays)


def dense(config):
    return layer_config(config, "Dense")


def conv(config):
    return layer_config(config, "Conv2D")


CONFIG_EDITS = {
    # sizes: refused from the config, before any layer allocates (the arrays in the file stay small)
    "dense-200000-units": (lambda c: dense(c).update(units=200_000), r"dense_1.*weights reach \d+ values, more than"),
    "dense-1e12-units": (lambda c: dense(c).update(units=10**12), r"dense_1.*from 1 to 1048576. Received: 10{12}"),
    "huge-input-shape": (lambda c: [c["model"].update(input_shape=[60000, 60000, 1]),
                                    layer_config(c, "Rescaling").pop("input_shape")],
                         r"model.input_shape .* more than the budget's max_sample_elements"),
    "huge-filter-count": (lambda c: conv(c).update(filters=10**9), r"conv2d_1\) output shape"),
    "kernel-beyond-input-same": (lambda c: conv(c).update(kernel_size=[10**5, 10**5]),
                                 r"conv2d_1.* works on \d+ values per sample"),
    "kernel-beyond-input-valid": (lambda c: conv(c).update(kernel_size=[100, 100], padding="valid"),
                                  r"100x100 window does not fit in a 28x28 input"),
    "pool-window-huge": (lambda c: layer_config(c, "MaxPooling2D").update(pool_size=[10**6, 10**6], padding="same"),
                         r"max_pooling2d_1.* works on \d+ values per sample"),
    "costly-predictions": (lambda c: c["model"]["layers"].__setitem__(slice(2, 2), [
        {"class_name": "Conv2D", "config": {"name": f"wide_{i}", "filters": 128, "kernel_size": 3, "padding": "same"}}
        for i in range(24)]), r"wide_\d+\).*one prediction would take \d+ operations, more than the budget's"),
    "strides-0": (lambda c: conv(c).update(strides=[0, 0]), r"positive integer `strides`"),
    "units-0": (lambda c: dense(c).update(units=0), r"positive integer `units`. Received: units=0"),
    "units-negative": (lambda c: dense(c).update(units=-3), r"Received: units=-3"),
    "units-bool": (lambda c: dense(c).update(units=True), r"Received: units=True"),
    "units-string": (lambda c: dense(c).update(units="3"), r"Received: units='3'"),
    "units-float": (lambda c: dense(c).update(units=3.0), r"Received: units=3.0"),
    "input-shape-zero": (lambda c: [c["model"].update(input_shape=[0, 28, 1]),
                                    layer_config(c, "Rescaling").update(input_shape=[0, 28, 1])],
                         r"input_shape must be an integer from 1"),
    "input-shape-null": (lambda c: c["model"].update(input_shape=None), r"input_shape must be a list"),
    "input-shape-inconsistent": (lambda c: layer_config(c, "Flatten").update(input_shape=[1, 2, 3]),
                                 r"flatten_1.*declares input_shape \(1, 2, 3\) but receives \(14, 14, 4\)"),
    "reshape-product-overflow": (lambda c: c["model"]["layers"].insert(4, {"class_name": "Reshape", "config": {
        "name": "reshape_x", "target_shape": [2**32, 2**32 + 784]}}), r"Cannot reshape input of shape \(784,\)"),
    "too-many-layers": (lambda c: c["model"].update(layers=[
        *c["model"]["layers"][:4], *({"class_name": "Activation", "config": {"name": f"a{i}", "activation": "linear"}}
                                     for i in range(1100)), *c["model"]["layers"][4:]]),
                        r"model.layers must be a list of 1 to 1024 layers"),
    # numbers and types
    "rescaling-string": (lambda c: layer_config(c, "Rescaling").update(scale="0.5"), r"finite real number `scale`"),
    "use-bias-string": (lambda c: dense(c).update(use_bias="false"), r"`use_bias` to be True or False"),
    "padding-unknown": (lambda c: conv(c).update(padding="full"), r"`padding` to be one of valid, same"),
    "dropout-rate-1": (lambda c: c["model"]["layers"].insert(1, {"class_name": "Dropout", "config": {
        "name": "d", "rate": 1.0}}), r"Dropout expects `rate` in \[0.0, 1.0\)"),
    "dropout-seed-string": (lambda c: c["model"]["layers"].insert(1, {"class_name": "Dropout", "config": {
        "name": "d", "rate": 0.5, "seed": "x"}}), r"Dropout expects `seed` to be None or an integer"),
    "leaky-alpha-5": (lambda c: dense(c).update(activation={"name": "leaky_relu", "alpha": 5}),
                      r"LeakyReLU expects `alpha` in \[0.0, 1.0\)"),
    "iterations-negative": (lambda c: c["compile"]["optimizer"].update(iterations=-5), r"iterations must be an integer"),
    "iterations-huge": (lambda c: c["compile"]["optimizer"].update(iterations=10**30), r"iterations must be an integer"),
    "iterations-bool": (lambda c: c["compile"]["optimizer"].update(iterations=True), r"iterations must be an integer"),
    "iterations-string": (lambda c: c["compile"]["optimizer"].update(iterations="5"), r"iterations must be an integer"),
    "learning-rate-negative": (lambda c: c["compile"]["optimizer"]["config"].update(learning_rate=-1),
                               r"Adam expects `learning_rate` in \(0.0, inf\]"),
    "seed-negative": (lambda c: c["model"].update(seed=-1), r"`seed` to be None or an integer"),
    "dtype-float16": (lambda c: c["model"].update(dtype="float16"), r"model.dtype must be one of float32, float64"),
    "version-huge": (lambda c: c.update(version=10**40), r"model format version 10+(\.\.\.0+)? is not supported"),
    "format-missing": (lambda c: c.pop("format"), r"not a NeuralNetworks model file \(format is not"),
    # names the registries do not know
    "unknown-layer": (lambda c: c["model"]["layers"][4].update(class_name="Lambda"), r"unknown layer class 'Lambda'"),
    "dunder-layer": (lambda c: c["model"]["layers"][4].update(class_name="__class__"), r"unknown layer class"),
    "unknown-loss": (lambda c: c["compile"].update(loss="Evil"), r"unknown loss 'Evil'"),
    "unknown-optimizer": (lambda c: c["compile"]["optimizer"].update(class_name="Evil"), r"unknown optimizer 'Evil'"),
    "unknown-activation": (lambda c: dense(c).update(activation="evil"), r"Unknown activation 'evil'"),
    "unknown-initializer": (lambda c: dense(c).update(initializer="evil"), r"Unknown initializer 'evil'"),
    "unknown-metric": (lambda c: c["compile"].update(metrics=["evil"]), r"Unknown metric 'evil'"),
    "unknown-schedule": (lambda c: c["compile"]["optimizer"]["config"].update(
        learning_rate={"schedule": "Evil", "config": {}}), r"unknown schedule 'Evil'"),
    "bad-schedule-config": (lambda c: c["compile"]["optimizer"]["config"].update(
        learning_rate={"schedule": "StepDecay", "config": {"initial_learning_rate": 0.1, "step_size": 0}}),
        r"StepDecay expects a positive integer `step_size`"),
    "unknown-preprocessing": (lambda c: c.update(preprocessing="evil"), r"preprocessing must be one of"),
    # structure
    "unknown-top-level-key": (lambda c: c.update(evil=1), r"the config must have the keys .* unknown: 'evil'"),
    "unknown-model-key": (lambda c: c["model"].update(evil=1), r"model must have the keys .* unknown: 'evil'"),
    "unknown-layer-key": (lambda c: dense(c).update(evil=1), r"model.layers\[4\].config .* unknown: 'evil'"),
    "compile-not-object": (lambda c: c.update(compile=[1]), r"compile must be a JSON object"),
    "no-layers": (lambda c: c["model"].update(layers=[]), r"model.layers must be a list of 1 to"),
    "duplicate-layer-names": (lambda c: layer_config(c, "Conv2D").update(name="rescaling_1"),
                              r"layer name 'rescaling_1' is used twice"),
    "layer-name-control-characters": (lambda c: layer_config(c, "Flatten").update(name="f\x1b[2J"),
                                      r"printable characters"),
    "rng-state-other-generator": (lambda c: c.update(rng_state={"bit_generator": "MT19937", "state": {}, "has_uint32": 0,
                                                                "uinteger": 0}), r"bit_generator must be 'PCG64'"),
    "rng-state-beyond-128-bits": (lambda c: c["rng_state"]["state"].update(state=2**200), r"rng_state.state.state"),
    "rng-state-list": (lambda c: c.update(rng_state=[1, 2]), r"rng_state must be a JSON object"),
    # labels
    "labels-duplicate": (lambda c: c.update(labels={"0": "a", "1": "a", "2": "b"}), r"labels must be distinct"),
    "labels-too-few": (lambda c: c.update(labels={"0": "a"}), r"name each of the model's 3 outputs once"),
    "labels-too-many": (lambda c: c.update(labels={str(i): f"l{i}" for i in range(5)}), r"3 outputs once"),
    "labels-list": (lambda c: c.update(labels=["a", "b", "c"]), r"labels must be a JSON object"),
    "labels-not-strings": (lambda c: c.update(labels={"0": 1, "1": 2, "2": 3}), r"labels\[0\]"),
    "labels-keys-not-indices": (lambda c: c.update(labels={"0": "a", "01": "b", "2": "c"}), r"keyed by the output"),
    "labels-control-characters": (lambda c: c.update(labels={"0": "a\x1b[2J", "1": "b", "2": "c"}), r"printable"),
    "labels-huge": (lambda c: c.update(labels={"0": "a" * 10**6, "1": "b", "2": "c"}), r"at most 256 printable"),
}


@pytest.mark.parametrize("edit", CONFIG_EDITS.values(), ids=CONFIG_EDITS.keys())
def test_hostile_configs_are_refused_before_anything_is_built(good, tmp_path, nothing_is_built, edit):
    edit_config, pattern = edit
    rejected(edited(good, tmp_path, edit_config), pattern)


ARRAY_EDITS = {
    "nan-weight": (lambda a: a.update({"dense_1/bias": np.array([np.nan, 0, 0], np.float32)}), r"finite"),
    "inf-weight": (lambda a: a.update({"dense_1/bias": np.array([np.inf, 0, 0], np.float32)}), r"finite"),
    "0-d-array": (lambda a: a.update({"dense_1/bias": np.float32(1)}), r"shape mismatch for dense_1/bias"),
    "wrong-rank": (lambda a: a.update({"dense_1/bias": np.zeros((3, 1), np.float32)}), r"shape mismatch"),
    "int-weights": (lambda a: a.update({"dense_1/bias": np.zeros(3, np.int32)}), r"int32; expected float32 or float64"),
    "bool-weights": (lambda a: a.update({"dense_1/bias": np.zeros(3, bool)}), r"bool; expected float32"),
    "float16-weights": (lambda a: a.update({"dense_1/bias": np.zeros(3, np.float16)}), r"float16; expected"),
    "complex-weights": (lambda a: a.update({"dense_1/bias": np.zeros(3, np.complex64)}), r"dtype complex64"),
    "string-weights": (lambda a: a.update({"dense_1/bias": np.array(["a", "b", "c"])}), r"dtype <U1"),
    "structured-weights": (lambda a: a.update({"dense_1/bias": np.zeros(3, [("a", "<f4"), ("b", "<i4")])}),
                           r"expected plain numbers"),
    "object-weights": (lambda a: a.update({"dense_1/bias": np.array([1, "x", None], object)}), r"dtype object"),
    "missing-weight": (lambda a: a.pop("dense_1/bias"), r"missing: \['dense_1/bias'\]"),
    "extra-array": (lambda a: a.update({"../../etc/passwd": np.zeros(1, np.float32)}), r"unexpected: \['../../etc/"),
    "slot-wrong-shape": (lambda a: a.update({"optimizer/dense_1/kernel/m": np.zeros((3, 3), np.float32)}),
                         r"shape mismatch for optimizer/dense_1/kernel/m: model expects \(784, 3\)"),
    "slot-missing": (lambda a: a.pop("optimizer/dense_1/kernel/m"), r"optimizer entries missing"),
    "slot-extra": (lambda a: a.update({"optimizer/dense_1/kernel/zzz": np.zeros((784, 3), np.float32)}),
                   r"unexpected optimizer entry optimizer/dense_1/kernel/zzz"),
    "slot-nan": (lambda a: a.update({"optimizer/dense_1/bias/m": np.full(3, np.nan, np.float32)}), r"finite"),
    "slot-negative-square": (lambda a: a.update({"optimizer/dense_1/bias/v": -np.ones(3, np.float32)}), r">= 0"),
}


@pytest.mark.parametrize("edit", ARRAY_EDITS.values(), ids=ARRAY_EDITS.keys())
def test_hostile_arrays_are_refused(good, tmp_path, edit):
    edit_arrays, pattern = edit
    rejected(edited(good, tmp_path, edit_arrays=edit_arrays), pattern)


def test_a_negative_moving_variance_is_refused_and_zero_is_fine(good, tmp_path):
    rejected(edited(good, tmp_path, edit_arrays=lambda a: a.update(
        {"batch_normalization_1/moving_variance": -np.ones(4, np.float32)}), kind="bn"), r"moving_variance .* >= 0")
    path = edited(good, tmp_path, kind="bn", edit_arrays=lambda a: a.update(
        {"batch_normalization_1/moving_variance": np.zeros(4, np.float32)}))
    assert np.isfinite(models.load(path).predict(np.zeros((1, 28, 28, 1)))).all()


@pytest.mark.parametrize(("text", "pattern"), [
    ('{"format": "NeuralNetworks.Sequential", "version": 1, "x": Infinity}', r"Infinity, which is not a JSON number"),
    ('{"format": "NeuralNetworks.Sequential", "version": 1, "x": NaN}', r"NaN, which is not a JSON number"),
    ('{"format": "NeuralNetworks.Sequential", "version": 1, "x": 1e400}', r"'1e400' overflows a float"),
    ('{"format": "NeuralNetworks.Sequential", "version": 1, "x": ' + "9" * 5000 + "}", r"5000 digits"),
    ('{"format": "NeuralNetworks.Sequential", "version": 1, "version": 1}', r"'version' appears twice"),
    ("[" * 100_000 + "]" * 100_000, r"deeper than the budget's max_json_depth \(32\)"),
    ('{"a":' * 40 + "1" + "}" * 40, r"deeper than the budget's max_json_depth"),
    ("", r"not valid JSON \(Expecting value"),
    ("[1, 2, 3]", r"not a NeuralNetworks model file \(format is not"),
    ('"text"', r"format is not"),
    ("null", r"format is not"),
], ids=["infinity", "nan", "float-overflow", "huge-integer", "duplicate-key", "deep-array", "deep-object", "empty",
        "array", "string", "null"])
def test_config_json_is_parsed_strictly(good, tmp_path, text, pattern):
    _, arrays = good["plain"]
    rejected(write_model(tmp_path / "m.npz", None, arrays, config_bytes=text.encode()), pattern)


def test_config_not_utf8_or_not_bytes(good, tmp_path):
    config, arrays = good["plain"]
    rejected(write_model(tmp_path / "a.npz", None, arrays, config_bytes=b"\xff\xfe{}"), r"not UTF-8")
    text_config = [("__config__.npy", npy_bytes(np.array(json.dumps(config))))] + members_of(config, arrays)[1:]
    rejected(write_members(tmp_path / "b.npz", text_config), r"'__config__' has dtype <U")
    wide = [("__config__.npy", npy_bytes(np.frombuffer(json.dumps(config).encode(), np.uint8).astype(np.int32)))]
    rejected(write_members(tmp_path / "c.npz", wide + members_of(config, arrays)[1:]), r"__config__ is int32")


def test_array_headers_are_judged_before_their_data_is_read(good, tmp_path, nothing_is_built):
    config, arrays = good["plain"]
    members = members_of(config, {k: v for k, v in arrays.items() if k != "dense_1/kernel"})
    members.append(("dense_1/kernel.npy", npy_header("<f4", (10**9, 1000), b"\0" * 64)))
    rejected(write_members(tmp_path / "m.npz", members), r"declares \(1000000000, 1000\) float32 .* holds 64 bytes")
    members[-1] = ("dense_1/kernel.npy", npy_header("<f4", (-5, 3)))
    rejected(write_members(tmp_path / "n.npz", members), r"no valid .npy header|non-negative")


def test_a_deflate_bomb_is_refused_from_the_zip_directory(good, tmp_path, nothing_is_built):
    config, arrays = good["plain"]
    path = write_members(tmp_path / "bomb.npz", members_of(config, arrays) + [
        ("zeros.npy", npy_header("<f4", (1 << 22,), bytes(1 << 24)))], zipfile.ZIP_DEFLATED)
    small = Budget(inflation_floor_bytes=1 << 20)
    rejected(path, r"decompress to 16 MiB \(a decompression bomb\?\); the budget allows \d+x", budget=small)
    rejected(path, r"more than the budget's max_model_bytes", budget=Budget(max_model_bytes=1 << 23))


@pytest.mark.parametrize(("make", "pattern"), [
    (lambda p, m: write_members(p, m + [(f"x{i}.npy", b"") for i in range(8200)]), r"lists 82\d\d members"),
    (lambda p, m: forge_entry_count(write_members(p, m), 0xFFFE, 0xFFFFFFF0), r"lists 65534 members"),
    (lambda p, m: write_members(p, m + [(f"x{i}.npy", b"") for i in range(65_600)]), r"lists 656\d\d members in 3.\d+ MiB"),
    (lambda p, m: write_members(p, m + [("x" * 60000 + ".npy", npy_bytes(np.zeros(1)))]), r"longer than 256"),
    (lambda p, m: write_members(p, m + [("dense_1/bias.npy", npy_bytes(np.ones(3, np.float32)))]), r"appears twice"),
    (lambda p, m: write_members(p, m + [("evil.pkl", b"cos\nsystem\n(S'true'\ntR.")]), r"'evil.pkl' is not a .npy"),
    (lambda p, m: set_zip_flag(write_members(p, m), 1), r"is encrypted"),
    (lambda p, m: write_members(p, m, zipfile.ZIP_BZIP2), r"compression method 12; expected stored or deflated"),
    (lambda p, m: write_members(p, m, zipfile.ZIP_LZMA), r"compression method 14"),
], ids=["many-members", "forged-member-count", "zip64-directory", "huge-member-name", "duplicate-member", "non-npy-member",
        "encrypted", "bzip2", "lzma"])
def test_hostile_zip_directories(good, tmp_path, nothing_is_built, make, pattern):
    config, arrays = good["plain"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it is asked to write
        path = make(tmp_path / "m.npz", members_of(config, arrays))
    rejected(path, pattern)


def test_damaged_archives(good, tmp_path):
    path = edited(good, tmp_path)
    data = bytearray(path.read_bytes())
    data[data.find(b"\x93NUMPY", data.find(b"dense_1/kernel.npy")) + 300] ^= 0xFF
    path.write_bytes(bytes(data))
    rejected(path, r"'dense_1/kernel' cannot be read: Bad CRC-32")
    path.write_bytes(bytes(data[: len(data) // 2]))
    rejected(path, r"no zip directory")
    path.write_bytes(b"PK\x03\x04" + os.urandom(3000))
    rejected(path, r"not a readable NeuralNetworks model file")
    path.write_bytes(b"")
    rejected(path, r"not a NeuralNetworks model file \(expected a .npz archive\)")
    zipfile.ZipFile(path, "w").close()
    rejected(path, r"expected a .npz archive")


def test_paths_that_are_not_regular_files(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    rejected(fifo, r"expected a regular model file, found a FIFO")  # not a hang
    (tmp_path / "link.npz").symlink_to("/dev/zero")
    rejected(tmp_path / "link.npz", r"found a character device")
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    rejected(tmp_path / "loop.npz", r"cannot open the model file \(Too many levels of symbolic links\)")
    (tmp_path / "folder" / "model.npz").mkdir(parents=True)
    rejected(tmp_path / "folder", r"model.npz: expected a model file, found a folder|found a folder")
    rejected(tmp_path / "missing.npz", r"no such model file")


@pytest.mark.parametrize("variation", ["big-endian", "fortran-order", "deflated", "zip-comment", "no-optimizer",
                                       "sgd-momentum", "zero-iterations"])
def test_valid_variations_still_load(good, tmp_path, variation):
    config, arrays = good["plain"]
    expected = models.load(write_model(tmp_path / "reference.npz", config, arrays))
    path = tmp_path / "m.npz"
    if variation == "big-endian":
        write_model(path, config, {k: v.astype(v.dtype.newbyteorder(">")) for k, v in arrays.items()})
    elif variation == "fortran-order":
        write_model(path, config, {k: np.asfortranarray(v) for k, v in arrays.items()})
    elif variation == "deflated":
        write_model(path, config, arrays, compression=zipfile.ZIP_DEFLATED)
    elif variation == "zip-comment":
        write_model(path, config, arrays)
        with zipfile.ZipFile(path, "a") as archive:
            archive.comment = b"x" * 65535
    elif variation == "no-optimizer":
        expected.save(path, include_optimizer=False)
    elif variation == "sgd-momentum":
        small_model(optimizer="sgd").save(path, labels=LABELS)
        expected = models.load(path)
    else:
        write_model(path, {**config, "compile": {**config["compile"], "optimizer": {
            **config["compile"]["optimizer"], "iterations": 0}}}, {k: v for k, v in arrays.items()
                                                                   if not k.startswith("optimizer/")})
    loaded = models.load(path)
    x = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), expected.predict(x))
    assert loaded.labels == dict(enumerate(LABELS))


def test_weights_so_large_that_outputs_overflow_give_a_named_error(good, tmp_path):
    path = edited(good, tmp_path, lambda c: layer_config(c, "Rescaling").update(scale=1e38))
    model = models.load(path)
    with pytest.raises(models.NonFiniteOutputError, match=r"overflowed to infinity or NaN for 1 of 1 samples"):
        model(data=np.full((28, 28, 1), 255.0))


def test_predict_takes_smaller_batches_when_a_sample_is_large(monkeypatch):
    """A model whose layers hold millions of values per sample predicts a few samples at a time, so that a model
    file cannot make a 256-sample batch take gigabytes; an ordinary model keeps the full batch."""
    wide = models.Sequential(seed=0)
    wide.add(layers.Dense(1 << 20, input_shape=(2,)))  # 4 MiB of float32 per sample
    wide.add(layers.Dense(1))
    small = models.Sequential(seed=0)
    small.add(layers.Dense(3, input_shape=(2,)))
    batches = []
    for model in (wide, small):
        original = model.forward
        monkeypatch.setattr(model, "forward", lambda x, training=False, original=original: (batches.append(len(x)),
                                                                                           original(x))[1])
        model.predict(np.zeros((300, 2)))
    assert max(batches[:-2]) == models.INFERENCE_BATCH_ELEMENTS // (1 << 20) and batches[-2:] == [256, 44]


def test_every_registered_layer_declares_what_build_creates():
    """``weight_shapes``/``state_shapes``/``working_elements_per_sample`` are what the loader trusts instead of
    building: they must match ``build`` for every layer a file may name."""
    examples = {name: layer_class.example() for name, layer_class in layers.REGISTRY.items()}  # see Layer.example
    for name, (layer, shape) in examples.items():
        declared = (layer.weight_shapes(shape), layer.state_shapes(shape))
        layer.build(shape, np.random.default_rng(0), np.dtype(np.float32))
        built = ({k: v.shape for k, v in layer.params.items()}, {k: v.shape for k, v in layer.state.items()})
        assert declared == built, name
    # one channel: the columns gain a row of ones, the bias of the inference product
    assert layers.Conv2D(2, 3, padding="same").working_elements_per_sample((5, 5, 1)) == 5 * 5 * 10 + 7 * 7
    assert layers.Conv2D(2, 3, padding="same").working_elements_per_sample((5, 5, 2)) == 5 * 5 * 18 + 7 * 7 * 2


def test_a_layer_named_like_the_optimizer_prefix_still_round_trips(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(3, input_shape=(2,), name="optimizer"))
    model.add(layers.Dense(2, name="optimizer/x"))
    model.compile("adam", "mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 2)), verbose=0)
    loaded = models.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 2))), model.predict(np.ones((1, 2))))
    np.testing.assert_array_equal(loaded.optimizer.slots[0]["v"], model.optimizer.slots[0]["v"])
