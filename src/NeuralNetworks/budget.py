"""The resource budget: how much a file or a request from outside may make the library allocate, before it is
believed.

Everything read from outside (a model file, a dataset file, an image, a drawing, an HTTP request) announces its
sizes before its data: a zip directory, ``.npy`` and IDX headers, a JSON config, an image header, a
Content-Length. Every reader compares those claims with a ``Budget`` *before* it allocates for them, and a
claim over the budget is refused with the reader's usual one-line error (``ModelFileError``, ``DataError``,
``ImageFileError``, an HTTP 4xx) naming the limit and how to raise it.

The defaults leave room for every model and dataset this library is meant for (the shipped models use 0.1% of
them) while keeping one hostile input far below the memory of a small machine. To adjust them, pass a
``Budget`` to the reader::

    from NeuralNetworks.budget import Budget
    big = Budget(max_parameters=2**29, max_model_bytes=8 * 2**30)
    model = models.load("huge.npz", budget=big)
    create_app({"huge": "huge.npz"}, budget=big)

``models.load``, ``serving.load_model``, ``serving.read_image``, ``app.create_app``, ``data.load`` (and every
loader, with ``budget=``) take one; SECURITY.md lists what each limit protects.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Budget:
    """Limits on what outside input may claim; see the module docstring and SECURITY.md."""

    # -- model files (.npz) ---------------------------------------------------------------------------------
    max_model_bytes: int = 1 * GIB  # the file, and all its arrays once decompressed (weights, optimizer slots)
    max_archive_members: int = 8192  # arrays in one .npz
    max_member_name_chars: int = 256  # "layer/param" names
    max_npy_header_bytes: int = 10_000  # one .npy header (numpy's own default)
    max_config_bytes: int = 4 * MIB  # the JSON config
    max_json_depth: int = 32  # nesting of JSON arrays and objects (a saved model uses 6)
    max_integer_digits: int = 64  # digits of one JSON integer (the saved random-generator state uses 39)
    max_layers: int = 1024
    max_dimension: int = 1 << 20  # one axis of a shape (input, output, window, stride, reshape target)
    max_sample_elements: int = 1 << 22  # per sample: the input, each layer's output and its working arrays
    max_parameters: int = 1 << 25  # weights of a model (128 MiB in float32; loading takes about 6x that)
    max_operations_per_sample: int = 1 << 31  # arithmetic of one prediction (~0.2 s on one core)
    max_labels: int = 100_000
    max_name_chars: int = 256  # one label, layer name or model name
    max_iterations: int = 10**15  # an optimizer's saved step count
    # -- compressed data (model files, mnist.npz, gzipped IDX) ------------------------------------------------
    max_inflation_ratio: int = 50  # decompressed / compressed bytes, once past inflation_floor_bytes
    inflation_floor_bytes: int = 64 * MIB  # data below this size may compress as well as it likes
    # -- datasets ---------------------------------------------------------------------------------------------
    max_dataset_bytes: int = 2 * GIB  # images one loader returns (IDX, mnist.npz, QuickDraw rows, shapes)
    # -- images and drawings ----------------------------------------------------------------------------------
    max_image_pixels: int = 1 << 24  # width x height of an image file, read from its header (4096 x 4096)
    max_upload_side: int = 2048  # pixels a side of an image sent to the app
    max_points: int = 10_000  # points of one drawing (a long, busy doodle has ~2,000; the worst takes ~1 s)
    max_coordinate: float = 1e9  # |x| and |y| of a drawing's points, in any unit
    # -- the app ----------------------------------------------------------------------------------------------
    max_request_bytes: int = 2 * MIB  # one request body (a 512x512 canvas PNG is ~50 KB)
    request_timeout_seconds: float = 10.0  # to receive a whole request body
    header_timeout_seconds: float = 5.0  # to receive a request's line and headers, from connecting or the last answer
    max_connections: int = 1000  # open at once (and never more than the file-descriptor limit leaves room for)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind = numbers.Integral if field.type == "int" else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not 0 < value < math.inf:
                expected = "integer" if kind is numbers.Integral else "number"
                raise ValueError(f"Budget expects `{field.name}` to be a positive finite {expected}. "
                                 f"Received: {field.name}={value!r}")

    def inflation_limit(self, compressed_bytes: int) -> int:
        """The most bytes ``compressed_bytes`` of deflate or gzip data may decompress to."""
        return max(self.inflation_floor_bytes, self.max_inflation_ratio * compressed_bytes)


DEFAULT_BUDGET = Budget()


def bytes_text(count: int) -> str:
    """A byte count for a message: "1.5 GiB", "640 KiB", "12 bytes"."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"
