"""What the export parity tests share (the exporters' tests and the layer contract test): weights random enough
that outputs differ from sample to sample, onnxruntime on a ModelProto, and the page's ``nn.js`` alone in
headless Chromium, running any manifest on any inputs with ``network.run``."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, CHROMIUM_MISSING, confine

ONNX_PARITY = 1e-5  # largest allowed difference between onnxruntime's and our outputs
BROWSER_PARITY = 1e-4  # between the page's and ours
KERNEL_GAIN = 2.0  # random kernels' standard deviation times sqrt(fan-in)
NN_SCRIPTS = ("nn-winograd.js", "nn-conv.js", "nn.js")  # the forward pass: nn.js with its convolutions, loaded first
NN_PAGE = ('<!doctype html><meta charset="utf-8"><title>nn.js</title>'
           + "".join(f'<script src="{script}"></script>' for script in NN_SCRIPTS))


def randomize(model, seed: int = 0) -> None:
    """Every weight of ``model`` drawn at random, variances and scales positive (BatchNormalization's moving
    statistics far from their initial 0 and 1), so that a wrong conversion shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for key, value in (*layer.params.items(), *layer.state.items()):
            if key == "kernel":
                value[...] = rng.normal(0, KERNEL_GAIN / np.sqrt(np.prod(value.shape[:-1])), value.shape)
            else:
                low = 0.5 if key in ("moving_variance", "gamma") else -0.5
                value[...] = rng.uniform(low, low + 1.0, value.shape)


def as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def run_onnx(proto, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs of ``proto`` on ``inputs`` (in the graph's input order)."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    return session.run(None, {name: np.asarray(x, np.float32) for name, x in zip(names, inputs, strict=True)})


@contextlib.contextmanager
def nn_page(folder: Path) -> Iterator:
    """A Chromium page holding only ``nn.js`` and its ``nn-conv.js`` (from file://, nothing else reachable); skips
    without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    sync_api = pytest.importorskip("playwright.sync_api")
    from NeuralNetworks.app.server import STATIC_DIR

    for script in NN_SCRIPTS:
        (folder / script).write_bytes((STATIC_DIR / script).read_bytes())
    (folder / "index.html").write_text(NN_PAGE, encoding="utf-8")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            inside = folder.resolve().as_uri() + "/"
            confine(page, page.context, inside)
            page.goto(inside + "index.html")
            page.wait_for_function("() => window.nn && window.nn.load")
            yield page
        finally:
            browser.close()


def page_run(page, manifest: dict, weights: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``nn.load(manifest, weights).run`` on every sample of ``inputs`` (one batch per model input), in the page:
    one array per model output, batch first."""
    packed = [base64.b64encode(np.ascontiguousarray(x, dtype="<f4").tobytes()).decode("ascii") for x in inputs]
    result = page.evaluate("""([manifest, weights, packed, count]) => {
        const bytes = (text) => Uint8Array.from(atob(text), (char) => char.charCodeAt(0)).buffer;
        const network = window.nn.load(JSON.parse(manifest), bytes(weights));
        const inputs = packed.map((text) => new Float32Array(bytes(text)));
        const outputs = [];
        for (let i = 0; i < count; i++) {
            const sample = inputs.map((x) => x.subarray(i * x.length / count, (i + 1) * x.length / count));
            outputs.push(network.run(sample).map((y) => Array.from(y)));
        }
        return outputs; }""", [json.dumps(manifest), base64.b64encode(weights).decode("ascii"), packed, len(inputs[0])])
    return [np.array([sample[k] for sample in result]) for k in range(len(result[0]))]
