"""How ``NeuralNetworks train`` trains: the learning-rate schedule, the callbacks and the data handed to ``fit``.

Two schedules. ``plateau`` (the default) watches val_loss: 5x smaller steps after a stalled epoch, a stop after
``--patience`` epochs without a real gain, the best epoch's weights kept. ``cosine`` is a fixed-length recipe:
the learning rate decays to 0 along a cosine over all ``--epochs`` and the last weights are kept, so it needs no
validation set (``--validation-split 0`` trains on every image); the shipped models are trained this way.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from ..data import Dataset, StreamedDataset
from .checks import FlagError

if TYPE_CHECKING:
    from ..nn.callbacks import Callback, EarlyStopping

SCHEDULES = ("plateau", "cosine")
DEFAULT_LEARNING_RATE = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.05, "rmsprop": 1e-3, "adagrad": 0.01}
DEFAULT_VALIDATION_SPLIT = 0.1  # of the training set, when the dataset has no validation split of its own
# When val_loss stalls for an epoch, take 5x smaller steps: on MNIST this lifts the default MLP from 97.8% to 98.3%.
LR_PLATEAU_FACTOR = 0.2
LR_PLATEAU_PATIENCE = 1
# Improvements of val_loss smaller than this fraction of ln(classes), the loss of a uniform guess, do not reset
# EarlyStopping's patience: once ReduceLROnPlateau has made the steps tiny, gains of 1e-5 per epoch would
# otherwise keep training to its last epoch without changing a single prediction. For the 8 shapes this is
# 5.2e-4: half the last useful gain (~1e-3, the epoch after the first slow-down), twice the gains after it.
MIN_IMPROVEMENT_FRACTION = 2.5e-4


def check_schedule_flags(args: argparse.Namespace) -> None:
    """Raise FlagError if ``--validation-split`` is outside [0, 1) or is 0 with a schedule that needs val_loss."""
    split = args.validation_split
    if not (math.isfinite(split) and 0 <= split < 1):
        raise FlagError(f"--validation-split must be a number from 0 (inclusive) to 1 (exclusive), got {split}")
    if split == 0 and args.schedule != "cosine":
        raise FlagError("--validation-split 0 needs --schedule cosine: the plateau schedule and early stopping "
                        "watch val_loss")


def learning_rate(args: argparse.Namespace) -> float:
    """``--lr``, or the optimizer's default (``--schedule cosine`` decays it: see ``callbacks_for``)."""
    return DEFAULT_LEARNING_RATE[args.optimizer] if args.lr is None else args.lr


def callbacks_for(schedule: str, num_classes: int, patience: int) -> tuple[list[Callback], EarlyStopping | None]:
    """The schedule's callbacks and its EarlyStopping (None for ``cosine``, which runs every epoch).

    ``cosine``: the learning rate decays to 0 along a cosine over every step of the run, as ``fit`` counts
    them (``CosineDecayOverTraining``). ``plateau``: ReduceLROnPlateau and EarlyStopping on val_loss, keeping
    the best weights; gains below ``MIN_IMPROVEMENT_FRACTION`` of the chance-level loss ``ln(num_classes)`` do
    not count as improvements.
    """
    from ..nn import callbacks

    if schedule == "cosine":
        return [callbacks.CosineDecayOverTraining()], None
    slower = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=LR_PLATEAU_FACTOR, patience=LR_PLATEAU_PATIENCE)
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True,
                                      min_delta=MIN_IMPROVEMENT_FRACTION * math.log(num_classes))
    return [slower, stopper], stopper


def training_data(dataset: Dataset | StreamedDataset, validation_split: float) -> dict:
    """fit's data arguments: the streamed splits, or the arrays (held out by ``validation_split`` if the
    dataset has no validation split of its own)."""
    if isinstance(dataset, StreamedDataset):
        return {"x": dataset.train, "validation_data": dataset.validation}
    if dataset.x_val is not None:
        return {"x": dataset.x_train, "y": dataset.y_train, "validation_data": (dataset.x_val, dataset.y_val)}
    return {"x": dataset.x_train, "y": dataset.y_train, "validation_split": validation_split}
