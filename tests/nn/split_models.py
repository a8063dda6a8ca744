"""Small models and batches the split-step tests share (tests/nn/test_split_steps.py, test_forked_steps.py)."""

from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest

from NeuralNetworks.nn import forked_steps, layers, losses, models, optimizers, split_steps

CAN_FORK = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
needs_fork = pytest.mark.skipif(not CAN_FORK, reason="forked parts run on Linux only")


def forked(model: models.Model, parts: int, controller) -> forked_steps.ForkedSteps:
    """The split over ``parts`` processes, forked for this one use: they exit at the end of the ``with``."""
    return forked_steps.ForkedSteps(model, forked_steps.Workers(model, parts, controller), controller)


INPUT_SHAPE = (8, 8, 2)
CLASSES = 3


def small_cnn(seed: int = 1, dropout: float = 0.0, frozen_normalization: bool = False,
              dropout_seed: int | None = None) -> models.Sequential:
    model = models.Sequential(seed=seed)
    model.add(layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=INPUT_SHAPE))
    model.add(layers.BatchNormalization(trainable=not frozen_normalization))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    if dropout:
        model.add(layers.Dropout(dropout, seed=dropout_seed))
    model.add(layers.Dense(CLASSES, activation="softmax"))
    model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return model


def residual_two_outputs(seed: int = 1) -> models.Model:
    inputs = layers.Input(INPUT_SHAPE)
    x = layers.Conv2D(2, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(layers.Add()([x, inputs]))
    first = layers.Dense(CLASSES, activation="softmax", name="first")(layers.Flatten()(x))
    second = layers.Dense(CLASSES, activation="softmax", name="second")(layers.GlobalAveragePooling2D()(x))
    model = models.Model(inputs, [first, second], seed=seed)
    model.compile(optimizer=optimizers.SGD(0.1), loss=losses.SparseCategoricalCrossentropy())
    return model


def two_cores(monkeypatch) -> None:
    """As on a machine of two cores with BLAS on both, and any step big enough to split."""
    monkeypatch.setattr(split_steps, "MIN_PART_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(split_steps, "available_cores", lambda: 2)
    monkeypatch.setattr(split_steps, "blas_threads", lambda controller: 2)


def batch(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *INPUT_SHAPE)).astype(np.float32), rng.integers(0, CLASSES, n)
