"""Learning-rate schedules: callables ``schedule(step) -> learning_rate`` for an optimizer's ``learning_rate``."""

from __future__ import annotations

import math
from typing import Any

from .._validation import positive_int, real_in_range


class LearningRateSchedule:
    """Base schedule; ``step`` counts optimizer updates (batches) from 0."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return dict(vars(self))


class StepDecay(LearningRateSchedule):
    """lr = initial * drop^floor(step / step_size)."""

    def __init__(self, initial_learning_rate: float, step_size: int, drop: float = 0.5) -> None:
        self.initial_learning_rate = real_in_range("StepDecay", "initial_learning_rate", initial_learning_rate,
                                                   0.0, math.inf, low_open=True)
        self.step_size = positive_int("StepDecay", "step_size", step_size)
        self.drop = real_in_range("StepDecay", "drop", drop, 0.0, 1.0, low_open=True)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.drop ** (step // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """lr = initial * decay_rate^(step / decay_steps), as in Keras."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float) -> None:
        self.initial_learning_rate = real_in_range("ExponentialDecay", "initial_learning_rate",
                                                   initial_learning_rate, 0.0, math.inf, low_open=True)
        self.decay_steps = positive_int("ExponentialDecay", "decay_steps", decay_steps)
        self.decay_rate = real_in_range("ExponentialDecay", "decay_rate", decay_rate, 0.0, 1.0, low_open=True)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** (step / self.decay_steps)


class CosineDecay(LearningRateSchedule):
    """lr = alpha_lr + (initial - alpha_lr) (1 + cos(pi t)) / 2, t = min(step / decay_steps, 1)
    (Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983, without restarts)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        self.initial_learning_rate = real_in_range("CosineDecay", "initial_learning_rate", initial_learning_rate,
                                                   0.0, math.inf, low_open=True)
        self.decay_steps = positive_int("CosineDecay", "decay_steps", decay_steps)
        self.alpha = real_in_range("CosineDecay", "alpha", alpha, 0.0, 1.0)

    def __call__(self, step: int) -> float:
        t = min(step / self.decay_steps, 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * t))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


REGISTRY: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls for cls in (StepDecay, ExponentialDecay, CosineDecay)
}
