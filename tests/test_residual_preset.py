"""presets.residual_cnn, the issue's acceptance from the command line: it trains, saves, loads and exports to ONNX
(onnxruntime parity) and to the web page (its manifest; the page's parity is in tests/export)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from NeuralNetworks import cli
from NeuralNetworks.nn import layers, models, presets


def test_the_residual_preset_is_a_functional_model_with_two_skip_connections():
    model = presets.residual_cnn((28, 28, 1), 10, seed=0)
    assert type(model) is models.Model and model.output_shape == (10,)
    adds = [call for call in model.graph.calls if isinstance(call.layer, layers.Add)]
    assert len(adds) == 2
    # each Add reads a block's last BatchNormalization and the block's input: a shortcut, not the chain
    for call in adds:
        assert call.inputs[1] < call.inputs[0] - 1


def test_residual_trains_saves_loads_and_exports_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "residual.npz"
    assert cli.main(["train", "--max-per-class", "20", "--epochs", "1", "--quiet", "--arch", "residual",
                     "--out", str(out)]) == 0
    model = models.load(out)
    assert model.get_config()["calls"] == presets.residual_cnn((28, 28, 1), 8, seed=0).get_config()["calls"]
    assert cli.main(["export", "--model", str(out), "--format", "onnx", "--out", str(tmp_path / "r.onnx")]) == 0
    assert cli.main(["export", "--model", str(out), "--format", "web", "--out", str(tmp_path / "web")]) == 0
    capsys.readouterr()
    x = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"input": x})[0] - model.predict(x)).max() <= 1e-5
    manifest = json.loads((tmp_path / "web" / "model.json").read_text())
    assert [layer["kind"] for layer in manifest["layers"]].count("Add") == 2
    assert manifest["outputs"] == [{"name": "dense_1", "shape": list(model.output_shape)}]
