"""Transfer learning for Teach: a shipped model's convolutional layers, frozen, turn drawings into features, and
a small new head learns the user's classes from them.

Why frozen: the base learned strokes, corners and loops from tens of thousands of drawings; twenty drawings a
class could not teach those again, and would undo them if its weights moved. Only the head (Dropout and one
Dense softmax layer) is trained, on the features of each example and of ``AUGMENTED_COPIES`` randomly rotated,
zoomed and shifted copies of it (the library's Random* layers). Those features are computed once, when the
example is added (``FeatureBase.features``), and kept, so a training is only the head's few thousand steps.

The model a session downloads is one ordinary ``Sequential``: the augmentation layers, copies of the base's
feature layers with their weights, and the trained head (``assemble``). No FastAPI here: the routes live in
``app.teach``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..export import to_web
from ..nn import callbacks, layers, models, optimizers
from ..nn._threads import blas_controller
from ..serving import ServedModel

FEATURE_CUT_LAYERS = ("Flatten", "GlobalAveragePooling2D")  # the base's features: its last such layer's output
AUGMENTED_COPIES = 8  # randomly changed copies of each example whose features train the head (with the original)
ROTATION_FACTOR = 0.06  # a fraction of a full turn: +-22 degrees
ZOOM_FACTOR = 0.12  # +-12% of the size
SHIFT_FACTOR = 0.08  # +-8% of the height and width
FEATURE_DTYPE = np.float16  # the cached features: half the memory, far more precision than a linear head needs
HEAD_DROPOUT = 0.3
HEAD_LEARNING_RATE = 0.001
EPOCHS = 20
BATCH_SIZE = 32
TRAINING_BLAS_THREADS = 1  # a training leaves the other cores to predictions
TAUGHT_MODEL_NAME = "teach"
HEAD_NAMES = ("teach_dropout", "teach_dense")
AUGMENTATION_NAMES = ("teach_rotation", "teach_zoom", "teach_shift")


class NotTeachableError(ValueError):
    """The model cannot be a base: it has no Flatten or GlobalAveragePooling2D layer whose output is a feature
    vector followed by its own head."""


def feature_cut(model: models.Sequential) -> int:
    """How many of ``model``'s layers make its features: up to its last Flatten/GlobalAveragePooling2D."""
    found = [index for index, layer in enumerate(model.layers[:-1]) if type(layer).__name__ in FEATURE_CUT_LAYERS]
    if not found:
        raise NotTeachableError(f"Model {model.name!r} cannot be taught new classes: it has no "
                                f"{' or '.join(FEATURE_CUT_LAYERS)} layer before its last layer")
    return found[-1] + 1


def _copy(layer: layers.Layer) -> layers.Layer:
    return type(layer).from_config(layer.get_config())


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


@dataclass
class TrainedHead:
    """What a training produced: the head (Dropout, Dense) on features, and how it went."""

    head: models.Sequential
    epochs: int
    loss: float
    accuracy: float  # on the examples as they were drawn (no augmentation)
    stopped_early: bool  # the time limit ended it before ``EPOCHS``


class FeatureBase:
    """A served model as a frozen feature extractor: copies of its layers up to ``feature_cut``, without the
    ones that only act in training, run in inference mode; and the augmentation drawing the copies."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        base = served.model
        self.cut = feature_cut(base)
        kept = [layer for layer in base.layers[:self.cut] if not layer.identity_at_inference]
        self.extractor = models.Sequential([_copy(layer) for layer in kept], name=f"{base.name}_features")
        if not self.extractor.built:
            self.extractor.build(base.input_shape)
        names = {layer.name for layer in kept}
        self.extractor.set_named_weights({key: value for key, value in base.get_named_weights().items()
                                          if key.split("/", 1)[0] in names}, source=f"model {base.name!r}")
        self.feature_size = int(np.prod(self.extractor.output_shape))
        self.augmentation = models.Sequential(self.augmentation_layers(), name="teach_augmentation")
        self._lock = threading.Lock()  # Conv2D reuses its buffers and the augmentation keeps its draws
        self._blas = blas_controller()

    def augmentation_layers(self) -> list[layers.Layer]:
        """Fresh Random* layers, input shape that of the base, named so they cannot clash with its layers."""
        taken = {layer.name for layer in self.served.model.layers}
        rotation, zoom, shift = (_unique(name, taken) for name in AUGMENTATION_NAMES)
        return [layers.RandomRotation(ROTATION_FACTOR, fill_mode="constant", name=rotation,
                                      input_shape=self.served.model.input_shape),
                layers.RandomZoom(ZOOM_FACTOR, fill_mode="constant", name=zoom),
                layers.RandomTranslation(SHIFT_FACTOR, SHIFT_FACTOR, fill_mode="constant", name=shift)]

    def features(self, bitmaps: np.ndarray) -> np.ndarray:
        """(n, 28, 28) uint8 bitmaps -> (n, 1 + AUGMENTED_COPIES, feature_size) features: each bitmap's own
        first, then those of its augmented copies."""
        count = len(bitmaps)
        x = np.asarray(bitmaps, dtype=np.float32).reshape(count, *self.served.model.input_shape)
        copies = np.repeat(x, AUGMENTED_COPIES, axis=0)
        with self._lock, self._one_thread():
            augmented = self.augmentation.forward(copies, training=True) if AUGMENTED_COPIES else copies
            batch = np.concatenate([x, augmented]).astype(self.extractor.dtype, copy=False)
            found = self.extractor.predict(batch).reshape(len(batch), -1)
        largest = np.finfo(FEATURE_DTYPE).max
        found = np.clip(found, -largest, largest).astype(FEATURE_DTYPE)  # never inf from a base's large features
        own, others = found[:count], found[count:].reshape(count, AUGMENTED_COPIES, -1)
        return np.concatenate([own[:, None], others], axis=1)

    def _one_thread(self) -> contextlib.AbstractContextManager:
        if self._blas is None:
            return contextlib.nullcontext()
        return self._blas.limit(limits=TRAINING_BLAS_THREADS, user_api="blas")

    def new_head(self, classes: int, seed: int | None = None) -> models.Sequential:
        """An untrained head for ``classes`` classes, named so its layers cannot clash with the base's."""
        taken = {layer.name for layer in self.served.model.layers}
        dropout, dense = (_unique(name, taken) for name in HEAD_NAMES)
        head = models.Sequential([layers.Dropout(HEAD_DROPOUT, name=dropout, input_shape=(self.feature_size,)),
                                  layers.Dense(classes, activation="softmax", name=dense)],
                                 name="teach_head", seed=seed)
        head.compile(optimizers.Adam(HEAD_LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return head

    def train_head(self, features: Sequence[np.ndarray], targets: Sequence[int], classes: int, *,
                   deadline: float, report: Callable[[dict], None] = lambda progress: None,
                   seed: int | None = None) -> TrainedHead:
        """Train a new head on ``features`` (one ``(1 + AUGMENTED_COPIES, feature_size)`` array per example) and
        their class indices, for ``EPOCHS`` epochs or until ``time.monotonic()`` passes ``deadline``; calls
        ``report`` with ``{"epoch", "epochs", "loss", "accuracy"}`` after each epoch."""
        stacked = np.stack(features)  # (examples, copies, feature_size)
        x = stacked.reshape(-1, self.feature_size).astype(np.float32)
        y = np.repeat(np.asarray(targets, dtype=np.int64), stacked.shape[1])
        head = self.new_head(classes, seed)
        watcher = _EpochWatcher(deadline, report)
        with self._one_thread():
            head.fit(x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, callbacks=[watcher], verbose=0)
            guesses = head.predict(stacked[:, 0].astype(np.float32)).argmax(axis=1)
        accuracy = float(np.mean(guesses == np.asarray(targets)))
        return TrainedHead(head, watcher.epochs, watcher.loss, accuracy, watcher.epochs < EPOCHS)

    def assemble(self, head: models.Sequential, labels: Sequence[str]) -> models.Sequential:
        """The downloadable model: augmentation, the base's feature layers (copies, with its weights, frozen:
        ``trainable = False``), the head; labels ``labels``, preprocessing the base's."""
        frozen = [_copy(layer) for layer in self.extractor.layers]
        for layer in frozen:
            layer.trainable = False  # saved so: a fit of the downloaded model trains the head alone, as here
        model = models.Sequential([*self.augmentation_layers(), *frozen, *map(_copy, head.layers)],
                                  name=TAUGHT_MODEL_NAME)
        if not model.built:
            model.build(self.served.model.input_shape)
        model.set_named_weights({**self.extractor.get_named_weights(), **head.get_named_weights()},
                                source="the taught model")
        model.labels = dict(enumerate(labels))
        model.preprocessing = self.served.style
        return model


class _EpochWatcher(callbacks.Callback):
    """Reports each epoch and stops training once the deadline has passed."""

    def __init__(self, deadline: float, report: Callable[[dict], None]) -> None:
        self.deadline = deadline
        self.report = report
        self.epochs = 0
        self.loss = float("nan")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.epochs = epoch + 1
        self.loss = float(logs.get("loss", float("nan")))
        self.report({"epoch": self.epochs, "epochs": EPOCHS, "loss": self.loss,
                     "accuracy": float(logs.get("accuracy", float("nan")))})
        if time.monotonic() > self.deadline:
            self.model.stop_training = True


def model_file_bytes(model: models.Sequential) -> bytes:
    """The model file (.npz, as ``model.save`` writes it, without optimizer state) as bytes."""
    with tempfile.TemporaryDirectory(prefix="nn-teach-") as folder:
        path = model.save(Path(folder) / f"{TAUGHT_MODEL_NAME}.npz", include_optimizer=False)
        return path.read_bytes()


def web_zip_bytes(model: models.Sequential, name: str = TAUGHT_MODEL_NAME) -> bytes:
    """The static web page of ``model`` (``export.to_web``), zipped in one folder named ``name``."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="nn-teach-") as folder:
        root = to_web(model, Path(folder) / name, name)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    archive.write(path, Path(name) / path.relative_to(root))
    return buffer.getvalue()
