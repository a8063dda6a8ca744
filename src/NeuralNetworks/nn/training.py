"""The training loop behind ``Model.fit``: epochs of shuffled batches, validation and callbacks.

One batch goes through ``Trainer.train_step`` and nowhere else: ``model.compute_gradients`` (forward, loss,
backward into ``model.flat.grads``), then ``model.apply_gradients`` (the optimizer step). An engine that must
act between the two (averaging gradients across processes, say) subclasses ``Trainer`` and overrides
``train_step``; layers and optimizers need not know.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import boolean, positive_int, real_in_range
from ._structure import astype, count, parts, rows
from .activations import Softmax
from .callbacks import Callback, CallbackList, EpochLogger, History, ProgressBar
from .graph import BackwardStep, Graph
from .losses import Loss
from .sources import ArraySamples, Order, Samples, SampleSource, SourceSamples, batches, is_source
from .split_steps import SplitSteps, split_steps
from .weighting import Weighting
from .weights import FlatWeights

if TYPE_CHECKING:
    from .models import Model

VERBOSITY = (0, 1, 2)  # fit's display: none, a progress bar, one line per epoch
INFERENCE_BATCH_SIZE = 256  # predict/evaluate batch: big enough for BLAS to be efficient, small in memory

Logs = dict[str, float]


class NonFiniteError(ValueError, FloatingPointError):
    """Numbers overflowed to infinity or NaN (a loss, a prediction): a FloatingPointError, and a ValueError for
    callers that treat every refused input alike."""


class NonFiniteOutputError(NonFiniteError):
    """A prediction overflowed: the model would have returned infinities or NaN as if they were scores."""


@dataclass(frozen=True)
class StepPlan:
    """What a training step does, decided once when the model is compiled and built (``prepare_training``)."""

    steps: tuple[BackwardStep, ...]  # the backward walk over the model's graph (see ``graph.backward_steps``)
    fused_slots: frozenset[int]  # output slots whose softmax is fused with the loss: their gradient is y_hat - y
    gradients: tuple[np.ndarray, ...]  # what the optimizer steps from: the model's flat gradient buffer

    @classmethod
    def of(cls, graph: Graph, loss: Loss, flat: FlatWeights) -> StepPlan:
        fusable = set()
        if loss.fusable_with_softmax and not getattr(loss, "from_logits", False):
            producers = {call.output: call.layer for call in graph.calls}
            fusable = {slot for slot in graph.outputs
                       if isinstance(getattr(producers.get(slot), "activation", None), Softmax)}
        steps = graph.backward_steps(fusable)
        fused = frozenset(graph.calls[step.index].output for step in steps if step.fused)
        return cls(steps, fused, (flat.grads,))


def validation_count(n: int, fraction: float) -> int:
    """How many of ``n`` samples ``fit(validation_split=fraction)`` holds out for validation."""
    return int(round(n * fraction))


def predict(model: Model, x: Any, batch_size: int) -> Any:
    """``model``'s outputs for the prepared batch ``x``, ``batch_size`` samples at a time, in new arrays (a list
    of them for several outputs).

    Raises ``NonFiniteOutputError`` rather than return infinities or NaN."""
    n = count(x)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # an overflow is reported below
        if n <= batch_size:  # one batch (one image, say): no output buffer to fill
            with model.blas_threads(n):
                # a copy: the caller gets its own array, never one of a layer's reused buffers
                outputs = [part.copy() for part in parts(model.forward(astype(x, model.dtype)))]
        else:
            shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
            outputs = [np.empty((n, *shape), dtype=model.dtype) for shape in shapes]
            with model.blas_threads(batch_size):
                for start in range(0, n, batch_size):
                    batch = model.forward(astype(rows(x, slice(start, start + batch_size)), model.dtype))
                    for output, part in zip(outputs, parts(batch), strict=True):
                        output[start:start + batch_size] = part
    for output in outputs:
        if not np.isfinite(output).all():
            bad = int(np.count_nonzero(~np.isfinite(output.reshape(len(output), -1)).all(axis=1)))
            raise NonFiniteOutputError(
                f"The model's outputs overflowed to infinity or NaN for {bad} of {len(output)} samples: the "
                f"inputs or the weights are too large for {model.dtype} (scale the inputs, e.g. divide pixels by "
                "255; while training, lower the learning rate)")
    return outputs if isinstance(model.output_shape, list) else outputs[0]


def evaluate(model: Model, x: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> Logs:
    """Loss and metrics of ``model`` on prepared arrays (as ``model.prepare_data`` returns them)."""
    y_pred = model.predict(x, batch_size=batch_size, verbose=0)
    logs = {"loss": 0.0}
    size = batch_size or INFERENCE_BATCH_SIZE
    n = count(x)
    for start in range(0, n, size):  # batch means weighted by size: the exact mean over all samples
        where = slice(start, start + size)
        logs["loss"] += model.compute_loss(rows(y, where), rows(y_pred, where)) * min(size, n - start)
    logs["loss"] /= n
    for name, metric in model.metrics:
        logs[name] = metric(y, y_pred)
    return logs


class Totals:
    """Sample-weighted sums of the loss and each metric, and the sample count, in one float64 vector (which a
    data-parallel engine sums over processes in one call); ``means`` turns them into logs."""

    def __init__(self, model: Model) -> None:
        self.names = ("loss", *(name for name, _ in model.metrics))
        self.sums = np.zeros(len(self.names) + 1)

    def add(self, model: Model, loss_value: float, y: Any, y_pred: Any) -> None:
        samples = count(y)
        self.sums[0] += loss_value * samples
        for position, (_, metric) in enumerate(model.metrics, start=1):
            self.sums[position] += metric(y, y_pred) * samples
        self.sums[-1] += samples

    def means(self, sums: np.ndarray | None = None) -> Logs:
        sums = self.sums if sums is None else sums
        return {name: float(value / sums[-1]) for name, value in zip(self.names, sums, strict=False)}


def evaluation_totals(model: Model, samples: Samples, order: Order) -> Totals:
    """Loss and metric sums of ``model`` over the positions ``order`` of ``samples``, batch by batch."""
    totals = Totals(model)
    with model.blas_threads(INFERENCE_BATCH_SIZE):
        for _, x, y in batches(samples, order, INFERENCE_BATCH_SIZE):
            y_pred = model.forward(astype(x, model.dtype))
            totals.add(model, model.compute_loss(y, y_pred), y, y_pred)
    return totals


def check_step_loss(loss_value: float) -> None:
    """Raise before a step is taken from a non-finite loss: it would turn every weight into NaN."""
    if not np.isfinite(loss_value):
        raise NonFiniteError(f"The loss became {loss_value}: lower the learning rate or scale the inputs (e.g. "
                             "divide pixels by 255); no step was taken from it")


def finite_loss(loss_value: float, batch: int) -> float:
    if not np.isfinite(loss_value):
        raise NonFiniteError(f"The loss became {loss_value} at batch {batch}: lower the learning rate "
                             "or scale the inputs (e.g. divide pixels by 255)")
    return loss_value


class Trainer:
    """Runs ``fit`` for one model. Shuffling, dropout and the validation split draw from ``model.rng``, so a
    seeded model trains bit-identically; batches are gathered by index, never by copying the dataset.

    ``x`` may be arrays (with labels ``y``) or a ``sources.SampleSource`` (labels included, ``y=None``), whose
    batches are read as they are needed; ``validation_data`` likewise. An engine extends it through
    ``train_step`` (one batch), ``begin`` and ``end`` (around the epochs), ``train_epoch`` and ``evaluate``.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.weighting: Weighting | None = None  # fit's class and sample weights, once checked
        self.threads: SplitSteps | None = None  # fit's batches split over the cores, when that pays

    def fit(self, x: object, y: object = None, epochs: int = 1, batch_size: int = 32,
            validation_data: object = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[Callback] | None = None, verbose: int = 1,
            class_weight: object = None, sample_weight: object = None) -> History:
        """Train for ``epochs`` passes over ``(x, y)``; see ``Model.fit``."""
        model = self.model
        if model.optimizer is None or model.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before model.fit()")
        epochs = positive_int("fit", "epochs", epochs)
        batch_size = positive_int("fit", "batch_size", batch_size)
        validation_split = real_in_range("fit", "validation_split", validation_split, 0.0, 1.0, high_open=True)
        shuffle = boolean("fit", "shuffle", shuffle)
        if not isinstance(verbose, numbers.Integral) or verbose not in VERBOSITY:  # True and False are 1 and 0
            raise ValueError(f"fit expects `verbose` to be 0 (silent), 1 (progress bar) or 2 (one line per epoch). "
                             f"Received: verbose={verbose!r}")
        if callbacks is not None and (not isinstance(callbacks, Sequence) or
                                      not all(isinstance(callback, Callback) for callback in callbacks)):
            raise TypeError(f"fit expects `callbacks` to be a list of Callback instances. Received: {callbacks!r:.80}")
        train, validation = self.training_data(x, y, validation_data, validation_split)
        self.weighting = self.weighting_for(train, class_weight, sample_weight)
        history = History()
        steps_per_epoch = self.steps(len(train), batch_size)
        # History and the progress display come last, so they record what the user's callbacks added to the logs.
        display = [ProgressBar()] if verbose == 1 else [EpochLogger()] if verbose == 2 else []
        callback_list = CallbackList(self.callbacks([*(callbacks or []), history, *display]), model,
                                     {"epochs": epochs, "steps": steps_per_epoch,
                                      "batch_size": batch_size, "samples": len(train)})
        model.stop_training = False
        model.history = history
        model.prepare_training()
        self.begin()
        try:
            callback_list.on_train_begin()
            try:
                with self.step_threads(batch_size, epochs * steps_per_epoch) as self.threads:
                    for epoch in range(epochs):
                        callback_list.on_epoch_begin(epoch)
                        logs = self.train_epoch(train, batch_size, shuffle, callback_list)
                        if validation is not None:
                            logs.update({f"val_{k}": v for k, v in self.evaluate_samples(validation).items()})
                        callback_list.on_epoch_end(epoch, logs)
                        if model.stop_training:
                            break
            finally:
                callback_list.on_train_end()
        finally:
            self.end()
        return history

    def training_data(self, x: object, y: object, validation_data: object,
                      validation_split: float) -> tuple[Samples, Samples | None]:
        """The training set and the validation set (or None) as ``fit`` received them, checked."""
        model = self.model
        validation: Samples | None = None
        if is_source(x):
            if y is not None:
                raise ValueError("fit(source) reads the labels from the source: leave y out (y=None)")
            if validation_split:
                raise ValueError("validation_split needs arrays; pass a streamed validation set as "
                                 "validation_data=<source>")
            train: Samples = self.source_samples(x, "x")
        else:
            if y is None:
                raise ValueError("fit(x, y) needs the labels `y` (or `x` a SampleSource, which holds them)")
            x, y = model.prepare_data(x, y)
            train = ArraySamples(x, y)
            if validation_data is None and validation_split:
                train_index, val_index = self._split(count(x), validation_split)
                train = ArraySamples(x, y, train_index)
                validation = ArraySamples(rows(x, val_index), rows(y, val_index))
        if validation_data is not None:
            if is_source(validation_data):
                validation = self.source_samples(validation_data, "validation_data")
            elif isinstance(validation_data, tuple | list) and len(validation_data) == 2:
                validation = ArraySamples(*model.prepare_data(*validation_data, name="validation_data"))
            else:
                raise ValueError("`validation_data` must be a tuple (x_val, y_val) or a SampleSource")
        return train, validation

    def weighting_for(self, train: Samples, class_weight: object, sample_weight: object) -> Weighting | None:
        """fit's ``class_weight`` and ``sample_weight`` checked against the training samples (arrays only for
        ``sample_weight``; the base loop only: an engine with its own ``train_epoch`` refuses them)."""
        if class_weight is None and sample_weight is None:
            return None
        if type(self).train_epoch is not Trainer.train_epoch:
            raise ValueError(f"{type(self).__name__} does not support class_weight or sample_weight")
        arrays = isinstance(train, ArraySamples)
        if sample_weight is not None and not arrays:
            raise ValueError("sample_weight needs arrays x, y (a SampleSource has no fixed rows to weigh)")
        if class_weight is not None and isinstance(self.model.output_shape, list):
            raise ValueError("class_weight weighs the classes of a model with one output; this model has "
                             f"{len(self.model.output_shape)} (give sample_weight instead)")
        outputs = self.model.output_shape if isinstance(self.model.output_shape, tuple) else (1,)
        return Weighting.of(class_weight, sample_weight, count(train.x) if arrays else len(train),
                            int(np.prod(outputs)), self.model.loss.sparse_labels,
                            train.y if arrays and not isinstance(train.y, tuple) else None)

    def source_samples(self, source: SampleSource, name: str) -> SourceSamples:
        """``source`` as training or validation samples, once its sample shape is known to fit the model."""
        if len(source) == 0:
            raise ValueError(f"`{name}` is a SampleSource with no samples")
        self.model.prepare_data(np.zeros((1, *source.sample_shape), np.uint8), name=name)  # builds, checks shape
        return SourceSamples(source, self.model)

    def _split(self, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation indices (each sorted) of a shuffled split holding back ``fraction``."""
        order = self.model.rng.permutation(n)
        n_val = validation_count(n, fraction)
        if n_val == 0 or n_val == n:
            raise ValueError(f"validation_split={fraction} leaves no samples for training or validation out of {n}")
        return np.sort(order[:-n_val]), np.sort(order[-n_val:])

    def callbacks(self, callbacks: list[Callback]) -> list[Callback]:
        """The callbacks this process runs (all of them; an engine keeps display and files to one process)."""
        return callbacks

    def steps(self, samples: int, batch_size: int) -> int:
        """Batches in an epoch of ``samples``."""
        return -(-samples // batch_size)

    def begin(self) -> None:
        """Called once the model is prepared, before the first epoch: an engine synchronises processes here."""

    def end(self) -> None:
        """Called after the last epoch, also when training failed."""

    def train_epoch(self, train: Samples, batch_size: int, shuffle: bool, callback_list: CallbackList) -> Logs:
        """One pass over ``train`` in batches; the epoch's sample-weighted mean loss and metrics."""
        model = self.model
        totals = Totals(model)
        order = train.order(model.rng if shuffle else None)
        weighting = self.weighting
        for batch, (_, x, y) in enumerate(batches(train, order, batch_size)):
            if weighting is None:
                loss_value, y_pred = self.train_step(x, y)
            else:  # the batch's rows, as ``batches`` took them from the order
                positions = np.sort(order[batch * batch_size:(batch + 1) * batch_size])
                loss_value, y_pred = self.weighted_step(x, y, weighting.weights(y, positions))
            totals.add(model, finite_loss(loss_value, batch), y, y_pred)
            if callback_list.wants_batch_logs:
                callback_list.on_batch_end(batch, totals.means())
        return totals.means()

    def step_threads(self, batch_size: int, steps: int) -> contextlib.AbstractContextManager[SplitSteps | None]:
        """The context the ``steps`` steps of the epochs run in, giving the batch split over the cores or None
        (see ``split_steps``). An engine of processes, which splits batches itself, keeps one thread per step."""
        return split_steps(self.model, batch_size, steps)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One gradient step on one batch: the batch loss and predictions. Engines override this."""
        return self.weighted_step(x, y, None)

    def weighted_step(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> tuple[float, Any]:
        """One gradient step, each sample's loss weighed by ``sample_weight`` if given; split over the cores
        when ``fit`` chose to."""
        if self.threads is None:
            return self.model.train_on_batch(x, y, sample_weight)
        loss_value, y_pred = self.threads.compute_gradients(x, y, sample_weight)
        check_step_loss(loss_value)
        self.model.apply_gradients()
        return loss_value, y_pred

    def evaluate_samples(self, samples: Samples) -> Logs:
        """Loss and metrics over ``samples`` (arrays exactly as ``model.evaluate`` computes them)."""
        if isinstance(samples, ArraySamples) and samples.index is None:
            return evaluate(self.model, samples.x, samples.y)
        return evaluation_totals(self.model, samples, samples.order(None)).means()

    def evaluate(self, x: object, y: object = None) -> Logs:
        """Loss and metrics on arrays ``(x, y)`` or a ``SampleSource`` (``y=None``), as a dict."""
        if self.model.optimizer is None or self.model.loss is None:
            raise RuntimeError("Call model.compile(optimizer=..., loss=...) before evaluating the model")
        if is_source(x):
            return self.evaluate_samples(self.source_samples(x, "x"))
        if y is None:
            raise ValueError("evaluate(x, y) needs the labels `y` (or `x` a SampleSource, which holds them)")
        return self.evaluate_samples(ArraySamples(*self.model.prepare_data(x, y)))
