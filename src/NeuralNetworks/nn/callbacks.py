"""Callbacks: hooks the training loop calls, as in Keras (History, EarlyStopping, ModelCheckpoint, ...)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import non_negative_int, real_in_range
from . import schedules

if TYPE_CHECKING:
    from .models import Model

Logs = dict[str, float]
POSTFIX_EVERY = 10  # batches between refreshes of the numbers on the progress bar (redrawing costs time)


class Callback:
    """Base callback; ``self.model`` is set by ``fit`` before ``on_train_begin``.

    ``root_only``: in data-parallel training, run only on the first process (rank 0), because the callback
    prints or writes files (the progress display, ModelCheckpoint). Callbacks that change training
    (EarlyStopping, ReduceLROnPlateau) run on every process, which all see the same logs.
    """

    model: Model
    params: dict[str, Any]
    root_only: bool = False

    def set_model(self, model: Model, params: dict[str, Any]) -> None:
        self.model = model
        self.params = params

    def on_train_begin(self, logs: Logs | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...
    def on_train_end(self, logs: Logs | None = None) -> None: ...


class CallbackList:
    """Several callbacks called as one, in order. Which of them act after every batch is decided once, so a
    loop whose callbacks ignore batches (``verbose=0``) spends nothing per batch on them."""

    def __init__(self, callbacks: Sequence[Callback], model: Model, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model, params)
        self._on_batch = [c for c in self.callbacks if type(c).on_batch_end is not Callback.on_batch_end]

    @property
    def wants_batch_logs(self) -> bool:
        """True when a callback acts after every batch (so the loop must compute the running logs)."""
        return bool(self._on_batch)

    def on_train_begin(self) -> None:
        for callback in self.callbacks:
            callback.on_train_begin()

    def on_epoch_begin(self, epoch: int) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch)

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        for callback in self._on_batch:
            callback.on_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_end(self) -> None:
        for callback in self.callbacks:
            callback.on_train_end()


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"][epoch]``; ``fit`` returns it."""

    def __init__(self) -> None:
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"`mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}")
    if mode != "auto":
        return mode
    return "max" if monitor.endswith("accuracy") or monitor.endswith("acc") else "min"


class _MonitorMixin:
    """Tracks the best value of a logged quantity. An improvement must beat the best by more than
    ``min_delta`` (absolute, as in Keras) and by more than ``min_relative_delta`` times the best's magnitude."""

    def _init_monitor(self, monitor: str, mode: str, min_delta: float, min_relative_delta: float = 0.0) -> None:
        owner = type(self).__name__
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(real_in_range(owner, "min_delta", min_delta, -math.inf, math.inf))
        self.min_relative_delta = real_in_range(owner, "min_relative_delta", min_relative_delta, 0.0, 1.0,
                                                high_open=True)
        self.best = math.inf if self.mode == "min" else -math.inf

    def _current(self, logs: Logs | None) -> float:
        if not logs or self.monitor not in logs:
            available = ", ".join(sorted(logs or {})) or "none"
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which training did not log. "
                f"Logged: {available} (val_* needs validation_data or validation_split)"
            )
        return float(logs[self.monitor])

    def _improved(self, value: float) -> bool:
        margin = self.min_delta
        if math.isfinite(self.best):
            margin = max(margin, self.min_relative_delta * abs(self.best))
        if self.mode == "min":
            return value < self.best - margin
        return value > self.best + margin


class EarlyStopping(_MonitorMixin, Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``min_relative_delta`` also asks for an improvement of that fraction of the best value (1e-3: 0.1%), which
    suits a loss whose scale is not known in advance: tiny gains made once the learning rate has decayed then
    no longer count as progress. With ``restore_best_weights`` the best epoch's weights are put back at the
    end of training, also when training ran to its last epoch without stopping early (Keras restores only
    when it stops early).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False, *, min_relative_delta: float = 0.0) -> None:
        self._init_monitor(monitor, mode, min_delta, min_relative_delta)
        self.patience = non_negative_int("EarlyStopping", "patience", patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        self._init_monitor(self.monitor, self.mode, self.min_delta, self.min_relative_delta)
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_MonitorMixin, Callback):
    """Save the model after every epoch, or only when ``monitor`` improved with ``save_best_only``. The file
    holds the optimizer's state and the random state too, so ``models.load`` and ``fit`` resume training."""

    root_only = True

    def __init__(self, filepath: str | Path, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", labels: dict | None = None) -> None:
        self._init_monitor(monitor, mode, 0.0)
        self.filepath = str(filepath)
        self.save_best_only = bool(save_best_only)
        self.labels = labels

    def on_epoch_end(self, epoch, logs=None):
        path = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        if self.save_best_only:
            value = self._current(logs)
            if not self._improved(value):
                return
            self.best = value
        self.model.save(path, labels=self.labels)


class ReduceLROnPlateau(_MonitorMixin, Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 min_lr: float = 0.0, mode: str = "auto", *, min_relative_delta: float = 0.0) -> None:
        self._init_monitor(monitor, mode, min_delta, min_relative_delta)
        self.factor = real_in_range("ReduceLROnPlateau", "factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.patience = non_negative_int("ReduceLROnPlateau", "patience", patience)
        self.min_lr = real_in_range("ReduceLROnPlateau", "min_lr", min_lr, 0.0, math.inf)
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._init_monitor(self.monitor, self.mode, self.min_delta, self.min_relative_delta)
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if self._improved(value):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.wait and self.wait >= self.patience:
            optimizer = self.model.optimizer
            if callable(optimizer.learning_rate):
                raise ValueError("ReduceLROnPlateau cannot change a learning-rate schedule; use a float rate")
            optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            self.wait = 0
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.current_learning_rate)


class CosineDecayOverTraining(Callback):
    """At the start of ``fit``, turn the optimizer's constant learning rate into a ``schedules.CosineDecay`` that
    reaches ``alpha`` times it at the last step of this fit: ``epochs x steps per epoch``, counted by ``fit``
    itself (after ``validation_split``, over every process of a data-parallel job). A rate that is already a
    schedule (a resumed run) is kept."""

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = real_in_range("CosineDecayOverTraining", "alpha", alpha, 0.0, 1.0)

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not callable(optimizer.learning_rate):
            optimizer.learning_rate = schedules.CosineDecay(
                optimizer.learning_rate, decay_steps=self.params["epochs"] * self.params["steps"], alpha=self.alpha)


class ProgressBar(Callback):
    """A tqdm bar per epoch showing loss and metrics live; added by ``fit(verbose=1)``."""

    root_only = True

    def __init__(self, stream=None) -> None:
        self.stream = stream
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.params["steps"], desc=f"Epoch {epoch + 1}/{self.params['epochs']}",
                         unit="batch", file=self.stream or sys.stderr, leave=True, dynamic_ncols=True)

    def on_batch_end(self, batch, logs=None):
        self._bar.update(1)
        if logs and (batch % POSTFIX_EVERY == 0 or batch + 1 == self.params["steps"]):
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items()})
            self._bar.close()
            self._bar = None


class EpochLogger(Callback):
    """One line per epoch (``fit(verbose=2)``): handy in logs and CI, where bars are noise."""

    root_only = True

    def __init__(self, stream=None) -> None:
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        values = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        print(f"Epoch {epoch + 1}/{self.params['epochs']} - {values}", file=self.stream or sys.stdout)


class CSVLogger(Callback):
    """Append each epoch's logs to a CSV file as one row (``epoch`` first, then the logs in order), as Keras'
    ``CSVLogger``: the header is written with the first row; ``append=True`` continues an existing file. Each
    row is flushed, so the file is readable while training runs."""

    root_only = True

    def __init__(self, filename: str | Path, separator: str = ",", append: bool = False) -> None:
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger expects a one-character `separator`. Received: {separator!r}")
        self.filename, self.separator, self.append = Path(filename), separator, bool(append)
        self._file = None
        self._keys: list[str] | None = None

    def on_train_begin(self, logs=None):
        existing = self.append and self.filename.is_file() and self.filename.stat().st_size > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._keys = None
        self._header_written = existing

    def on_epoch_end(self, epoch, logs=None):
        import csv

        logs = logs or {}
        if self._keys is None:
            self._keys = list(logs)
        writer = csv.writer(self._file, delimiter=self.separator)
        if not self._header_written:
            writer.writerow(["epoch", *self._keys])
            self._header_written = True
        writer.writerow([epoch, *(logs.get(key, "") for key in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
