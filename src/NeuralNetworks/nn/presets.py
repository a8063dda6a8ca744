"""The default networks the command line trains: a sensible MLP and a small CNN for 28x28 images."""

from __future__ import annotations

from . import layers
from .models import Sequential

PIXEL_SCALE = 1 / 255  # images stay uint8 on disk and in memory; the model rescales each batch


def default_mlp(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Sequential:
    """784-256-128-classes ReLU MLP with softmax output, rescaling uint8 pixels to [0, 1] itself."""
    model = Sequential(name="mlp", seed=seed)
    model.add(layers.Rescaling(PIXEL_SCALE, input_shape=input_shape))
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation="relu"))
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dense(num_classes, activation="softmax"))
    return model
