"""ONNX export: a valid model (full checker) whose onnxruntime outputs match ours on real images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_test_models import every_layer_model, images_for, real_images, shipped_models

from NeuralNetworks import export
from NeuralNetworks.cli import main
from NeuralNetworks.nn import activations, layers, models

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

PARITY = 1e-5  # largest allowed difference between onnxruntime's and our outputs (probabilities)


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.astype(np.float32)})[0]


def op_types(proto) -> list[str]:
    return [node.op_type for node in proto.graph.node]


@pytest.mark.parametrize("path", shipped_models(), ids=lambda path: path.stem)
def test_shipped_models_match_onnxruntime_on_real_images(path, tmp_path, mnist_dir, quickdraw_dir):
    model = models.load(path)
    x = images_for(model, mnist_dir, quickdraw_dir)
    proto = export.to_onnx(model, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "model.onnx"), full_check=True)
    ours, theirs = model.predict(x), run_onnx(tmp_path / "model.onnx", x)
    assert theirs.shape == ours.shape == (len(x), *model.output_shape)
    assert np.abs(theirs - ours).max() <= PARITY
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(metadata["labels"]) == [model.labels[i] for i in range(len(model.labels))]


def test_a_model_with_every_layer_type_matches_onnxruntime(tmp_path, quickdraw_dir):
    model = every_layer_model()
    x = real_images(quickdraw_dir, "quickdraw").astype(np.float32)[..., np.newaxis]
    proto = export.to_onnx(model, tmp_path / "every.onnx")
    onnx.checker.check_model(proto, full_check=True)
    ours, theirs = model.predict(x), run_onnx(tmp_path / "every.onnx", x)
    assert np.abs(theirs - ours).max() <= PARITY
    assert ours.std(axis=0).mean() > 0.01  # the images lead to different outputs: the comparison means something
    types = op_types(proto)
    for op in ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Gemm", "Softmax",
               "LeakyRelu", "Tanh", "Sigmoid", "Relu", "Reshape", "Transpose", "Mul", "Add"):
        assert op in types, op
    assert "Dropout" not in types


def test_random_models_match_on_random_inputs_for_every_padding_split(tmp_path):
    """Odd and even kernels and strides, "same" and "valid", on odd and even sizes: the pads must match exactly."""
    rng = np.random.default_rng(1)
    for size in (7, 8):
        for kernel, stride in ((1, 1), (2, 1), (3, 2), (4, 3), (5, 2)):
            model = models.Sequential(seed=size * 10 + kernel)
            model.add(layers.Conv2D(3, kernel, strides=stride, padding="same", input_shape=(size, size + 1, 2)))
            model.add(layers.MaxPooling2D(kernel, strides=stride, padding="same"))
            model.add(layers.AveragePooling2D(2, strides=stride, padding="same"))
            x = rng.normal(size=(4, size, size + 1, 2)).astype(np.float32)
            export.to_onnx(model, tmp_path / "window.onnx")
            np.testing.assert_allclose(run_onnx(tmp_path / "window.onnx", x), model.predict(x), atol=1e-5)


def test_a_model_that_ends_channels_first_is_returned_in_our_layout(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Conv2D(4, 3, input_shape=(6, 5, 2)))
    model.add(layers.BatchNormalization())
    x = np.random.default_rng(2).normal(size=(3, 6, 5, 2)).astype(np.float32)
    export.to_onnx(model, tmp_path / "conv.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "conv.onnx", x), model.predict(x), atol=1e-5)


def test_an_mlp_needs_no_transpose_and_a_float64_model_exports_as_float32(tmp_path):
    model = models.Sequential.from_sizes((5, 8, 3), activation="sigmoid", output_activation="softmax",
                                         seed=0, dtype="float64")
    model.add(layers.Dropout(0.5))
    proto = export.to_onnx(model)
    assert op_types(proto) == ["Gemm", "Sigmoid", "Gemm", "Softmax"]
    x = np.random.default_rng(3).normal(size=(6, 5))
    export.to_onnx(model, tmp_path / "mlp.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "mlp.onnx", x), model.predict(x), atol=1e-6)


class Swish(activations.ActivationFunction):
    """A custom activation from Python functions: nothing in ONNX says what it computes."""

    name = "swish"

    def __call__(self, x):
        return x / (1 + np.exp(-x))


class Doubling(layers.Layer):
    def forward(self, x, training=False):
        return 2 * x


class Augment(layers.Layer):
    identity_at_inference = True  # declared: vanishes from every export

    def forward(self, x, training=False):
        return x


def test_what_cannot_be_exported_is_named_and_nothing_is_written(tmp_path):
    model = models.Sequential()
    model.add(layers.Dense(3, activation=Swish(), input_shape=(4,), name="custom_dense"))
    with pytest.raises(export.ExportError, match=r"custom_dense.*Swish.*swish"):
        export.to_onnx(model, tmp_path / "no.onnx")
    model = models.Sequential()
    model.add(layers.Dense(3, input_shape=(4,)))
    model.add(Doubling(name="doubling"))
    with pytest.raises(export.ExportError, match=r"'doubling' \(Doubling\)"):
        export.to_onnx(model, tmp_path / "no.onnx")
    with pytest.raises(export.ExportError, match="not built"):
        export.to_onnx(models.Sequential(layers=[layers.Dense(2)]))
    assert list(tmp_path.iterdir()) == []


def test_layers_that_declare_themselves_identity_at_inference_vanish(tmp_path):
    model = models.Sequential(seed=0)
    model.add(layers.Dense(3, input_shape=(4,)))
    model.add(Augment())
    model.add(layers.Dropout(0.2))
    assert [step.kind for step in export.plan(model).steps] == ["Dense"]
    assert op_types(export.to_onnx(model)) == ["Gemm"]


def test_cli_writes_an_onnx_file_that_runs(tmp_path, capsys):
    model = models.Sequential.from_sizes((4, 5, 2), output_activation="softmax", seed=0)
    model.save(tmp_path / "small.npz", labels=["no", "yes"])
    assert main(["export", "--model", str(tmp_path / "small.npz"), "--format", "onnx",
                 "--out", str(tmp_path / "out" / "small.onnx")]) == 0
    assert "small.onnx" in capsys.readouterr().out
    x = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "out" / "small.onnx", x), model.predict(x), atol=1e-6)
    assert main(["export", "--model", str(tmp_path / "missing.npz"), "--format", "onnx",
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "error:" in capsys.readouterr().err
