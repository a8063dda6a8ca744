"""Crafting hostile model files: a small valid model to start from, and writers that produce what a careless or
malicious tool could (arbitrary zip members, raw .npy headers, raw config bytes)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from NeuralNetworks.nn import layers, models

LABELS = ["apple", "cat", "fish"]


def small_model(batch_normalization: bool = False, optimizer: str = "adam") -> models.Sequential:
    """A trained 28x28 CNN (Rescaling, Conv2D, [BatchNormalization], MaxPooling2D, Flatten, Dense) with an
    optimizer state: every kind of array a model file holds."""
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=(28, 28, 1)))
    model.add(layers.Conv2D(4, 3, padding="same", activation="relu"))
    if batch_normalization:
        model.add(layers.BatchNormalization())
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(len(LABELS), activation="softmax"))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    model.fit(x, np.arange(16) % len(LABELS), epochs=1, batch_size=8, verbose=0)
    return model


def npy_bytes(array: object) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array(buffer, np.asanyarray(array), allow_pickle=isinstance(array, np.ndarray) and
                           array.dtype == object)
    return buffer.getvalue()


def npy_header(descr: str, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    """A .npy member declaring ``descr`` and ``shape`` whatever ``data`` follows."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def contents(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(arrays.pop("__config__").tobytes()), arrays


def write_members(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def members_of(config: dict | None, arrays: dict[str, object], config_bytes: bytes | None = None) -> list:
    raw = json.dumps(config).encode() if config_bytes is None else config_bytes
    return [("__config__.npy", npy_bytes(np.frombuffer(raw, np.uint8))),
            *((f"{key}.npy", npy_bytes(value)) for key, value in arrays.items())]


def write_model(path: Path, config: dict | None, arrays: dict[str, object], *, config_bytes: bytes | None = None,
                compression: int = zipfile.ZIP_STORED) -> Path:
    return write_members(path, members_of(config, arrays, config_bytes), compression)


def layer_config(config: dict, class_name: str) -> dict:
    return next(entry["config"] for entry in config["model"]["layers"] if entry["class_name"] == class_name)


def set_zip_flag(path: Path, bit: int) -> Path:
    """Set a general-purpose flag bit in every central directory entry (bit 0: encrypted)."""
    data = bytearray(path.read_bytes())
    position = data.find(b"PK\x01\x02")
    while position >= 0:
        data[position + 8] |= bit
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))
    return path


def forge_entry_count(path: Path, entries: int, directory_bytes: int) -> Path:
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 16] = struct.pack("<HHL", entries, entries, directory_bytes)
    path.write_bytes(bytes(data))
    return path
