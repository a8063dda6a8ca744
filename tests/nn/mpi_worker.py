"""Run by test_mpi.py under ``mpiexec -n N``: ``python mpi_worker.py MODE FOLDER``.

- ``train``: 2 epochs of 10 steps (global batch 7) of the MLP and of the CNN with BatchNormalization (float64),
  through plain ``model.fit``; rank 0 writes the final parameters and a checkpoint after epoch 1.
- ``resume``: the checkpoints trained 1 more epoch; rank 0 writes the parameters.
- ``fail`` / ``kill``: rank 1 raises / is killed by SIGKILL during the second epoch; the job must end.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

from NeuralNetworks.nn import callbacks, layers, models, optimizers, parallel

BATCH = 7
STEPS_PER_EPOCH = 10


def mlp() -> models.Sequential:
    model = models.Sequential(seed=1, dtype="float64")
    model.add(layers.Dense(16, activation="relu", input_shape=(6,)))
    model.add(layers.BatchNormalization())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def cnn() -> models.Sequential:
    model = models.Sequential(seed=1, dtype="float64")
    model.add(layers.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 1)))
    model.add(layers.BatchNormalization())
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(3, activation="softmax"))
    model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def residual() -> models.Model:
    """A functional model: a skip connection around a convolution with BatchNormalization, a frozen layer."""
    x = layers.Input(shape=(8, 8, 1))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    branch = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(h))
    h = layers.MaxPooling2D(2)(layers.Add()([h, branch]))
    frozen = layers.Dense(5, activation="tanh", trainable=False)
    y = layers.Dense(3, activation="softmax")(frozen(layers.Flatten()(h)))
    model = models.Model(inputs=x, outputs=y, seed=1, dtype="float64")
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


NETWORKS = {"mlp": (mlp, (6,)), "cnn": (cnn, (8, 8, 1)), "residual": (residual, (8, 8, 1))}


def samples(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = BATCH * STEPS_PER_EPOCH
    return rng.normal(size=(n, *shape)), rng.integers(0, 3, n)


class Checkpoint(callbacks.ModelCheckpoint):
    """Writes the model after the first epoch only."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            super().on_epoch_end(epoch, logs)


class Fail(callbacks.Callback):
    """On rank 1, during the second epoch: raise, or be killed."""

    def __init__(self, how: str) -> None:
        self.how = os.environ.get("PMI_RANK") == "1" and how

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and self.how == "fail":
            raise OSError("cat.npy: the disk went away")
        if epoch == 1 and self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, folder: Path) -> None:
    for name, (make, shape) in NETWORKS.items():
        x, y = samples(shape)
        if mode == "resume":
            model = models.load(folder / f"{name}-checkpoint.npz")
            model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
        else:
            model = make()
            extra = [Fail(mode)] if mode in ("fail", "kill") else [Checkpoint(folder / f"{name}-checkpoint.npz")]
            model.fit(x, y, epochs=2, batch_size=BATCH, verbose=2, callbacks=extra)
        engine = parallel.engine_from_environment()
        if engine is not None:  # every process ends with rank 0's weights, to the bit
            same = np.array_equal(engine.broadcast(model.flat.params.copy()), model.flat.params)
            print(f"{name}: process {engine.rank} has rank 0's weights: {same}", flush=True)
        if os.environ.get("PMI_RANK", "0") == "0":
            np.save(folder / f"{name}-{mode}.npy", model.flat.params)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
