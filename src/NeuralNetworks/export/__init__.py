"""Deploy a trained model outside this library: ONNX for serving stacks, a static web page for browsers.

    from NeuralNetworks import export
    export.to_onnx(model, "doodles.onnx")    # needs the onnx extra: pip install "neural-networks[onnx]"
    export.to_web(model, "doodles-web/")     # open doodles-web/index.html, no server needed

Both accept a model (``Sequential`` or functional ``Model``) or a model file path and raise ``ExportError`` (a
ValueError) naming the layer or activation that cannot be exported. ``plan(model)`` is what both read: the
inference-time graph of layer calls, Dropout and other inference-identity layers removed; each layer class
converts itself (see ``nn.layers.conversion``). The web page serves models with one 28x28 input and one output.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .plan import ExportError, Plan, Port, Step, plan

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

FORMATS = ("onnx", "web")


def to_onnx(model, path: str | os.PathLike | None = None) -> onnx.ModelProto:
    """The model as a checked ONNX ModelProto, written atomically to ``path`` if given (see ``export.onnx``)."""
    try:
        from .onnx import to_onnx as convert
    except ImportError as error:
        raise ImportError(f"ONNX export needs the onnx package ({error}): "
                          'pip install "neural-networks[onnx]"') from None
    return convert(model, path)


def to_web(model, folder: str | os.PathLike, name: str | None = None) -> Path:
    """Write the static drawing page predicting with ``model`` into ``folder`` (see ``export.web``)."""
    from .web import to_web as write

    return write(model, folder, name)


__all__ = ["FORMATS", "ExportError", "Plan", "Port", "Step", "plan", "to_onnx", "to_web"]
