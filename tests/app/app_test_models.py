"""Model files for the app tests: small models with labels, written to temporary folders."""

from __future__ import annotations

from pathlib import Path

from NeuralNetworks.nn import layers, models

DOODLE_LABELS = ["apple", "diamond", "fish", "house"]
DIGIT_LABELS = [str(digit) for digit in range(10)]


def save_untrained(path: Path, labels: list[str], input_shape: tuple[int, ...] = (28, 28)) -> Path:
    """A randomly initialised 784-16-classes classifier with labels: enough to exercise the app."""
    model = models.Sequential(seed=0)
    model.add(layers.Rescaling(1 / 255, input_shape=input_shape))
    model.add(layers.Flatten())
    model.add(layers.Dense(16, activation="relu"))
    model.add(layers.Dense(len(labels), activation="softmax"))
    return model.save(path, labels=labels)
