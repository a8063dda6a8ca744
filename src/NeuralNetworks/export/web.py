"""The static web page: a folder that draws and predicts in the browser, from ``file://`` or any static host.

No Python, no server, no CDN, no build step. The folder holds::

    index.html    the app's drawing page, with the model bundled
    static/       the page's scripts and style (the package's ``page/static``, which the app serves too): app.js
                  (the drawing page), board.js (the drawing board), nn.js (the forward pass), nn-conv.js and
                  nn-winograd.js (its convolutions), strokes.js (the port of data/images.py's stroke
                  preprocessing), style.css
    model.json    the manifest: labels, preprocessing style, input shape, every layer call's kind, settings,
                  the tensors it reads and writes, and where its weights lie in model.bin
    model.bin     the weights, float32 little-endian, one after the other
    model.js      the same manifest and weights (base64) in a script the page loads

Why model.js: a page opened from ``file://`` may not ``fetch()`` its neighbours (Chromium gives every file URL
an opaque origin and refuses the request), but it may load them with ``<script src>``. So the page reads the
model from model.js, and model.json + model.bin serve everything else: the live app sends the page the same
two files over HTTP, and other JavaScript can ``fetch`` them from a static host.

The manifest's ``layers`` are the plan's steps in order, each with ``inputs`` (tensor names) and ``output``; the
top level names the graph's ``inputs`` and ``outputs`` (``[{"name", "shape"}]``). These fields came with
functional models, within version 1: a page from before them runs a file without merge layers correctly (such a
model with one input and one output is a chain, which that page assumes), and refuses one with merge layers as
an unknown layer kind. Today's ``nn.js`` reads files without them as chains.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np

from ..data import preprocessing as specs
from ..data.images import SIZE
from ..page import CONTENT_SECURITY_POLICY, MODELS_MARKER, PAGE_ASSETS, PAGE_FILE, RESULT_MARKER, script_json
from ..serving import style_for
from .plan import ExportError, Plan, plan
from .writing import write_atomically

MANIFEST_FORMAT = "NeuralNetworks.web"
MANIFEST_VERSION = 1
# The step kinds nn.js runs (its LAYERS table; the browser test checks the two agree).
WEB_KINDS = ("Dense", "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization",
             "Rescaling", "Activation", "Flatten", "Reshape", "Add", "Subtract", "Multiply", "Average", "Concatenate")
WEIGHTS_BYTE_ORDER = "<f4"  # float32, little-endian: what Float32Array reads on every browser's hardware


def manifest_and_weights(model_plan: Plan, name: str | None = None) -> tuple[dict, bytes]:
    """The manifest (JSON-ready) and the weights buffer of an export plan, in the browser's format; ``name``
    (default: the model's) is what the page shows in its model picker. ExportError names a layer whose kind
    the page's nn.js does not run."""
    chunks: list[bytes] = []
    offset = 0
    stored: dict[tuple[str, str], dict] = {}  # a shared layer's weights are stored once
    layers = []
    for step in model_plan.steps:
        if step.kind not in WEB_KINDS:
            raise ExportError(f"Cannot export layer {step.name!r} ({step.layer_class}) to the web page: its kind "
                              f"{step.kind!r} is not one the page's nn.js runs ({', '.join(WEB_KINDS)})")
        entries = {}
        for key, array in step.weights.items():
            if (step.name, key) not in stored:
                data = np.ascontiguousarray(array, dtype=WEIGHTS_BYTE_ORDER).tobytes()
                stored[step.name, key] = {"offset": offset, "shape": list(array.shape)}
                chunks.append(data)
                offset += len(data)
            entries[key] = stored[step.name, key]
        input_shape = [list(shape) for shape in step.input_shape] if step.input_shape and \
            isinstance(step.input_shape[0], tuple) else list(step.input_shape)
        layers.append({"kind": step.kind, "name": step.name, "inputs": list(step.inputs), "output": step.output,
                       "input_shape": input_shape, "output_shape": list(step.output_shape),
                       "settings": step.settings, "weights": entries})
    image_spec = specs.image_spec_for(model_plan.preprocessing, model_plan.input_shape)  # strokes.js applies it
    preprocessing = image_spec or style_for(model_plan.labels, model_plan.preprocessing)
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "name": name or model_plan.name,
                "labels": model_plan.labels, "preprocessing": preprocessing,
                "input_shape": list(model_plan.inputs[0].shape), "output_shape": list(model_plan.outputs[0].shape),
                "inputs": [{"name": port.tensor, "shape": list(port.shape)} for port in model_plan.inputs],
                "outputs": [{"name": port.tensor, "shape": list(port.shape)} for port in model_plan.outputs],
                "layers": layers}
    return manifest, b"".join(chunks)


def page_plan(model) -> Plan:
    """The plan of a model the page can serve: one input and one output; ExportError otherwise."""
    model_plan = plan(model)
    if len(model_plan.inputs) != 1 or len(model_plan.outputs) != 1:
        raise ExportError(f"The drawing page serves models with one input and one output; model "
                          f"{model_plan.name!r} has {len(model_plan.inputs)} inputs and {len(model_plan.outputs)} "
                          "outputs (export it to ONNX instead)")
    return model_plan


def web_model(model, name: str | None = None) -> tuple[dict, bytes]:
    """Manifest and weights of a model (or a model file) for the browser; ExportError if it cannot go."""
    return manifest_and_weights(page_plan(model), name)


def model_script(manifest: dict, weights: bytes) -> str:
    """model.js: registers the model with the page's ``window.nn`` when loaded by a ``<script>`` tag.

    Its text is fixed but for two literals: the manifest as escaped JSON (``page.script_json``) and the weights
    in base64. A name or label, whatever it holds (a newline, U+2028, ``</script>``), stays data."""
    return ("// Exported from NeuralNetworks: the manifest and the float32 weights (base64) of model.json and "
            "model.bin,\n// in a script because pages opened from file:// may load scripts but may not fetch files.\n"
            f"window.nn.register({script_json(manifest)},\n  \"{base64.b64encode(weights).decode('ascii')}\");\n")


def page_html() -> str:
    """The app's page without the server's result slot, loading model.js before the drawing board, with the
    page's Content-Security-Policy in its ``<head>`` (no inline script; it holds from ``file://`` too)."""
    page = PAGE_FILE.read_text(encoding="utf-8")
    head = '<meta charset="utf-8">'
    if MODELS_MARKER not in page or head not in page:
        raise RuntimeError(f"{PAGE_FILE} lacks the {MODELS_MARKER} marker or the {head} the export needs")
    policy = f'{head}\n  <meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    page = re.sub(r"<!--app-only-->.*?<!--/app-only-->", "", page, flags=re.DOTALL)  # links to the server's pages
    return (page.replace(RESULT_MARKER, "").replace(MODELS_MARKER, '<script src="model.js" defer></script>')
            .replace(head, policy, 1))


def to_web(model, folder: str | os.PathLike, name: str | None = None) -> Path:
    """Write the static page for a model (or the model file at that path) into ``folder``; return it.

    The model must take one 28x28 image (784 values), as the drawing page makes, or be a model trained on an
    image folder (any size, 1 or 3 channels: the page resizes the drawing as its image spec says), and give one
    output (the probabilities of its labels). ``name`` (default: the model's name) is shown in the page's model
    picker. Files are written one by one, each atomically; other files in ``folder`` are left alone.
    """
    model_plan = page_plan(model)
    values = int(np.prod(model_plan.input_shape))
    if values != SIZE * SIZE and specs.image_spec_for(model_plan.preprocessing, model_plan.input_shape) is None:
        raise ExportError(f"The drawing page feeds {SIZE}x{SIZE} images ({SIZE * SIZE} values), but model "
                          f"{model_plan.name!r} expects input shape {model_plan.input_shape} ({values} values)")
    folder = Path(folder).resolve()  # new/../site writes site, and creates no stray new/
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} exists and is not a folder; the web export writes a folder")
    assets = folder / "static"
    if assets.is_symlink() or (assets.exists() and not assets.is_dir()):
        raise ExportError(f"{assets} is a link or not a folder: the page's scripts are written only into a "
                          "static/ folder of its own (remove it, or export into another folder)")
    manifest, weights = manifest_and_weights(model_plan, name)
    for asset in PAGE_ASSETS:
        write_atomically(folder / "static" / asset, (PAGE_FILE.parent / asset).read_bytes())
    write_atomically(folder / "model.json", json.dumps(manifest, indent=1).encode("utf-8"))
    write_atomically(folder / "model.bin", weights)
    write_atomically(folder / "model.js", model_script(manifest, weights).encode("utf-8"))
    write_atomically(folder / "index.html", page_html().encode("utf-8"))
    return folder
