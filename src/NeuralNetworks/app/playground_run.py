"""One playground run: a toy problem, a small ``Sequential`` of ``Dense`` layers, and its training step by step.

``Settings`` is what a visitor chooses (checked field by field: a wrong value is an error naming the field);
``Run`` trains the library's own model on the library's own data (``data.toy``) one batch per step and reports
what the page draws (``Run.view``); ``script`` writes the Python that repeats the run exactly.

A step is ``model.train_on_batch`` on ``batch_size`` training points. The order of the points is a fresh
shuffle of the training set each time the previous one runs out, drawn from a generator of its own seeded with
``[seed, BATCH_ORDER_STREAM]``; weights come from ``Sequential(seed=seed)`` and the data from
``toy.make(..., seed=seed)``. The same settings and number of steps therefore give the same numbers anywhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data import toy
from ..nn import layers, losses, models, optimizers
from ..nn.training import NonFiniteError

MAX_HIDDEN_LAYERS = 6
MAX_UNITS = 16
LEARNING_RATE_RANGE = (1e-5, 10.0)
BATCH_SIZE_RANGE = (1, 100)
SEED_RANGE = (0, 2**32 - 1)
MOMENTUM = 0.9  # the "momentum" optimizer: SGD(momentum=MOMENTUM)
BATCH_ORDER_STREAM = 1  # the batch order's generator is default_rng([seed, BATCH_ORDER_STREAM])
GRID_SIDE = 40  # the output is reported on a GRID_SIDE x GRID_SIDE grid over the input square
NEURON_SIDE = 16  # every neuron's output on a NEURON_SIDE x NEURON_SIDE grid
DIGITS = 4  # decimals of the reported grids and weights (the losses are sent in full)
DATASETS = toy.NAMES  # xor, circles, spirals, blobs, regression
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
OPTIMIZERS = ("sgd", "momentum", "adam")

Units = Annotated[int, Field(ge=1, le=MAX_UNITS)]


class Settings(BaseModel):
    """A playground network and its problem; every field but ``dataset`` has a default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    dataset: Literal[DATASETS]
    hidden: list[Units] = Field([4, 4], max_length=MAX_HIDDEN_LAYERS,
                                description=f"Units of each hidden layer: 0 to {MAX_HIDDEN_LAYERS} layers "
                                            f"of 1 to {MAX_UNITS}")
    activation: Literal[ACTIVATIONS] = "tanh"
    optimizer: Literal[OPTIMIZERS] = "adam"
    learning_rate: float = Field(0.03, ge=LEARNING_RATE_RANGE[0], le=LEARNING_RATE_RANGE[1])
    batch_size: int = Field(10, ge=BATCH_SIZE_RANGE[0], le=BATCH_SIZE_RANGE[1])
    noise: float = Field(0.0, ge=toy.NOISE_RANGE[0], le=toy.NOISE_RANGE[1])
    train_fraction: float = Field(0.5, ge=toy.TRAIN_FRACTION_RANGE[0], le=toy.TRAIN_FRACTION_RANGE[1])
    seed: int = Field(0, ge=SEED_RANGE[0], le=SEED_RANGE[1])

    @property
    def task(self) -> str:
        return toy.GENERATORS[self.dataset][0]


def output_layer(task: str) -> tuple[str, str]:
    """The output activation and the loss of a task: a sigmoid probability with binary cross-entropy for
    classification, a linear output with mean squared error for regression (as ``script`` writes them)."""
    return ("sigmoid", "BinaryCrossentropy") if task == toy.CLASSIFICATION else ("linear", "MeanSquaredError")


def make_optimizer(settings: Settings) -> optimizers.Optimizer:
    if settings.optimizer == "adam":
        return optimizers.Adam(learning_rate=settings.learning_rate)
    return optimizers.SGD(learning_rate=settings.learning_rate,
                          momentum=MOMENTUM if settings.optimizer == "momentum" else 0.0)


def build_model(settings: Settings) -> models.Sequential:
    """The network of ``settings``, compiled: 2 inputs, the hidden layers, one output unit."""
    output_activation, loss = output_layer(settings.task)
    model = models.Sequential(seed=settings.seed)
    for units in settings.hidden:
        model.add(layers.Dense(units, activation=settings.activation, input_shape=(2,) if not model.layers else None))
    model.add(layers.Dense(1, activation=output_activation, input_shape=(2,) if not model.layers else None))
    model.compile(optimizer=make_optimizer(settings), loss=getattr(losses, loss)(),
                  metrics=["accuracy"] if settings.task == toy.CLASSIFICATION else None)
    return model


class TrainingDiverged(ValueError):
    """A step's loss was not finite: no step was taken from it."""


def _rounded(array: np.ndarray) -> list:
    """``array`` as nested lists of numbers rounded to ``DIGITS`` decimals; NaN and infinities become None
    (JSON has no such numbers)."""
    values = np.round(np.asarray(array, dtype=np.float64), DIGITS)
    if np.all(np.isfinite(values)):
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


class Run:
    """A playground session's state: the data, the model, the batch order and the steps taken so far.

    Not thread-safe: the app's session store runs one request of a session at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data = toy.make(settings.dataset, noise=settings.noise, train_fraction=settings.train_fraction,
                             seed=settings.seed)
        self.model = build_model(settings)
        self.steps = 0
        self._order_rng = np.random.default_rng([settings.seed, BATCH_ORDER_STREAM])
        self._order = np.empty(0, dtype=np.intp)
        self._grid = toy.grid(GRID_SIDE)
        self._neuron_grid = toy.grid(NEURON_SIDE)

    def train(self, steps: int) -> None:
        """Take ``steps`` steps; ``TrainingDiverged`` (after the steps that went well) if a loss is not finite."""
        size = self.settings.batch_size
        with np.errstate(all="ignore"):  # an overflow ends in TrainingDiverged, not in a warning per request
            self._train(steps, size)

    def _train(self, steps: int, size: int) -> None:
        for _ in range(steps):
            if len(self._order) < size:
                self._order = np.concatenate([self._order, self._order_rng.permutation(len(self.data.x_train))])
            batch = self._order[:size]
            try:
                self.model.train_on_batch(self.data.x_train[batch], self.data.y_train[batch])
            except NonFiniteError:
                raise TrainingDiverged(f"The training loss became infinite or NaN at step {self.steps + 1}: "
                                       "choose a smaller `learning_rate` and start again") from None
            self._order = self._order[size:]  # only once the step is taken, so the script's loop matches
            self.steps += 1

    def view(self) -> dict[str, object]:
        """What the page shows after the steps so far: losses and accuracies on both sets, the output over the
        input square, every neuron's output, the weights and each layer's gradient norm (of the whole
        training set's loss, from ``layer.grads``)."""
        data, model = self.data, self.model
        try:
            with np.errstate(all="ignore"):  # non-finite outputs raise below; no warning per request
                train = model.evaluate(data.x_train, data.y_train, return_dict=True)
                test = model.evaluate(data.x_test, data.y_test, return_dict=True)
                grid = model.predict(self._grid).reshape(GRID_SIDE, GRID_SIDE)
                model.compute_gradients(data.x_train, data.y_train)  # writes layer.grads, changes no weight
                neurons, outputs = [], self._neuron_grid
                for layer in model.layers:
                    outputs = layer.forward(outputs)
                    neurons.append(_rounded(outputs.T.reshape(-1, NEURON_SIDE, NEURON_SIDE)))
        except (ValueError, FloatingPointError) as error:  # NonFiniteOutputError: the weights overflowed
            raise TrainingDiverged(f"The network's outputs are no longer finite numbers ({error}); choose a "
                                   "smaller `learning_rate` and start again") from None
        norms = [float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in layer.grads.values())))
                 for layer in model.layers if layer.grads]
        classification = self.settings.task == toy.CLASSIFICATION
        return {
            "step": self.steps,
            "loss": _finite(train["loss"]),
            "test_loss": _finite(test["loss"]),
            "accuracy": _finite(train["accuracy"]) if classification else None,
            "test_accuracy": _finite(test["accuracy"]) if classification else None,
            "grid": _rounded(grid),
            "neurons": neurons,
            "weights": [_rounded(layer.params["kernel"]) for layer in model.layers],
            "biases": [_rounded(layer.params["bias"]) for layer in model.layers],
            "gradient_norms": [_finite(norm) for norm in norms],
        }

    def points(self) -> dict[str, object]:
        """The problem's training and test points and targets, for the page to draw."""
        data = self.data
        return {"task": self.settings.task, "extent": toy.EXTENT, "grid_side": GRID_SIDE,
                "neuron_side": NEURON_SIDE,
                "train": {"x": _rounded(data.x_train), "y": _rounded(data.y_train[:, 0])},
                "test": {"x": _rounded(data.x_test), "y": _rounded(data.y_test[:, 0])}}


SCRIPT = '''\
"""A playground run, repeated with NeuralNetworks.nn: {dataset}, hidden layers {hidden}, {activation},
{optimizer} (learning rate {learning_rate!r}), batch size {batch_size}, {steps} steps.

The same data, the same initial weights and the same batches as the playground's session, so the last line
prints the loss the playground showed after its step {steps}.
"""

import numpy as np

from NeuralNetworks.data import toy
from NeuralNetworks.nn import layers, losses, models, optimizers

SEED = {seed}
STEPS = {steps}
BATCH_SIZE = {batch_size}

# The points: {samples} in the square [-{extent:g}, {extent:g}]^2, a fraction {train_fraction!r} of them for training.
data = toy.make("{dataset}", noise={noise!r}, train_fraction={train_fraction!r}, seed=SEED)

# The network: Sequential(seed=SEED) draws the initial weights from its own generator.
model = models.Sequential(seed=SEED)
{layers}
model.compile(optimizer={optimizer_code}, loss=losses.{loss}(){metrics})

# One step is one batch: the training points are shuffled afresh each time the previous order runs out, by a
# generator of their own, and taken BATCH_SIZE at a time.
order_rng = np.random.default_rng([SEED, {stream}])
order = np.empty(0, dtype=np.intp)
for step in range(STEPS):
    if len(order) < BATCH_SIZE:
        order = np.concatenate([order, order_rng.permutation(len(data.x_train))])
    batch, order = order[:BATCH_SIZE], order[BATCH_SIZE:]
    model.train_on_batch(data.x_train[batch], data.y_train[batch])

train = model.evaluate(data.x_train, data.y_train, return_dict=True)
test = model.evaluate(data.x_test, data.y_test, return_dict=True)
{report}print(f"test loss: {{test['loss']:.9g}}")
print(f"final loss: {{train['loss']:.9g}}")
'''


def script(run: Run) -> str:
    """The Python script that repeats ``run``'s steps so far with ``NeuralNetworks.nn`` and prints, last,
    ``final loss: <the training loss after them>``."""
    settings = run.settings
    output_activation, loss = output_layer(settings.task)
    lines = []
    for units, activation in [*((units, settings.activation) for units in settings.hidden), (1, output_activation)]:
        shape = ", input_shape=(2,)" if not lines else ""
        lines.append(f'model.add(layers.Dense({units}, activation="{activation}"{shape}))')
    if settings.optimizer == "adam":
        optimizer = f"optimizers.Adam(learning_rate={settings.learning_rate!r})"
    elif settings.optimizer == "momentum":
        optimizer = f"optimizers.SGD(learning_rate={settings.learning_rate!r}, momentum={MOMENTUM!r})"
    else:
        optimizer = f"optimizers.SGD(learning_rate={settings.learning_rate!r})"
    classification = settings.task == toy.CLASSIFICATION
    report = ("print(f\"accuracy: {train['accuracy']:.4f}, test accuracy: {test['accuracy']:.4f}\")\n"
              if classification else "")
    return SCRIPT.format(
        dataset=settings.dataset, hidden=list(settings.hidden), activation=settings.activation,
        optimizer=settings.optimizer, learning_rate=settings.learning_rate, batch_size=settings.batch_size,
        steps=run.steps, seed=settings.seed, samples=toy.SAMPLES, extent=toy.EXTENT,
        train_fraction=settings.train_fraction, noise=settings.noise, layers="\n".join(lines),
        optimizer_code=optimizer, loss=loss, metrics=', metrics=["accuracy"]' if classification else "",
        stream=BATCH_ORDER_STREAM, report=report)
