"""Optimizers that update parameters in place, keeping per-parameter state (slots) bound once by ``build``.

Each ``_update`` reads like the update rule in its docstring. Slots and work buffers are allocated by
``build`` and reused: a step allocates no new arrays for the parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import boolean, real_in_range
from . import schedules

LearningRate = float | schedules.LearningRateSchedule


class NonFiniteStateError(ValueError, FloatingPointError):
    """An optimizer step made the parameters or the optimizer's state infinite or NaN: training stops there."""


def _moving_average(average: np.ndarray, value: np.ndarray, decay: float, scratch: np.ndarray) -> None:
    """average <- decay average + (1 - decay) value, in place (``value`` may be ``scratch`` itself)."""
    average *= decay
    average += np.multiply(value, 1 - decay, out=scratch)


def _step_by_root(param: np.ndarray, numerator: np.ndarray, squares: np.ndarray, step: float, epsilon: float,
                  scratch: np.ndarray) -> None:
    """param <- param - step numerator / (sqrt(squares) + epsilon), in place: AdaGrad's, RMSprop's and Adam's step."""
    np.sqrt(squares, out=scratch)
    scratch += epsilon
    np.divide(numerator, scratch, out=scratch)
    scratch *= step
    param -= scratch


class Optimizer:
    """Base optimizer. ``build(variables)`` binds the arrays it updates and creates their slots, once; every
    ``apply(gradients)`` then updates each variable in place from its gradient (same order as ``build``).

    A model builds its optimizer on one variable, the flat buffer of all its parameters (``model.flat.params``),
    so a step is a few whole-buffer NumPy operations whatever the number of layers.
    """

    slot_names: tuple[str, ...] = ()
    non_negative_slots: tuple[str, ...] = ()  # slots holding sums or averages of squares: negative is corrupt

    def __init__(self, learning_rate: LearningRate = 0.01) -> None:
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self.learning_rate: LearningRate = learning_rate
        else:
            self.learning_rate = real_in_range(type(self).__name__, "learning_rate", learning_rate, 0.0,
                                               math.inf, low_open=True)
        self.iterations = 0
        self.variables: list[np.ndarray] = []
        self.slots: list[dict[str, np.ndarray]] = []  # per variable: slot name -> array of its shape
        self._scratch: list[np.ndarray] = []  # one work array per variable, so a step allocates nothing

    def build(self, variables: Sequence[np.ndarray]) -> None:
        """Bind the arrays to update and create their slots (zeros, or the optimizer's initial value)."""
        self.variables = list(variables)
        self.slots = [self._create_slots(variable) for variable in self.variables]
        self._scratch = [np.empty_like(variable) for variable in self.variables]

    def is_built_for(self, variables: Sequence[np.ndarray]) -> bool:
        """True when ``build`` bound exactly these arrays (so their slots are the ones to keep)."""
        return len(variables) == len(self.variables) and all(
            mine is theirs for mine, theirs in zip(self.variables, variables, strict=True))

    def apply(self, gradients: Sequence[np.ndarray]) -> None:
        """One step: update every bound variable in place from the matching gradient."""
        if len(gradients) != len(self.variables):
            raise ValueError(f"{type(self).__name__}.apply got {len(gradients)} gradients for "
                             f"{len(self.variables)} variables; call build(variables) first")
        lr = self.current_learning_rate
        self.iterations += 1
        step_size = self.step_size(lr, self.iterations)
        for variable, gradient, slots, scratch in zip(self.variables, gradients, self.slots, self._scratch,
                                                      strict=True):
            self._update(variable, gradient, slots, lr, step_size, scratch)
            self._check_finite(slots)

    def _check_finite(self, slots: dict[str, np.ndarray]) -> None:
        """Stop at the step whose arithmetic overflowed the optimizer's state (a squared gradient past the dtype's
        range, say, which leaves the loss finite), before a model file would record the infinity; weights that
        overflow make the next loss non-finite, which the training loop names. One ``isfinite`` pass per slot,
        4x faster than the float64 sum it replaced (0.06 ms for the digits preset's 394,314 weights)."""
        for name, array in slots.items():
            if not np.isfinite(array).all():
                raise NonFiniteStateError(
                    f"{type(self).__name__}'s step {self.iterations} made {name} infinite or NaN (the gradients "
                    f"overflowed {array.dtype}): lower the learning rate or scale the inputs (e.g. divide pixels "
                    "by 255)")

    def step_size(self, learning_rate: float, iteration: int) -> float:
        """The factor of this step's update, for step number ``iteration`` (from 1): the learning rate itself,
        unless the rule corrects it (Adam's bias correction)."""
        return learning_rate

    def _create_slots(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.zeros_like(param) for name in self.slot_names}

    def _update(self, param: np.ndarray, grad: np.ndarray, slots: dict[str, np.ndarray], lr: float,
                step_size: float, scratch: np.ndarray) -> None:
        """Update ``param`` in place; ``scratch`` is a work array of its shape with no meaningful content."""
        raise NotImplementedError

    @property
    def current_learning_rate(self) -> float:
        if callable(self.learning_rate):
            return float(self.learning_rate(self.iterations))
        return float(self.learning_rate)

    def get_config(self) -> dict[str, Any]:
        config = {k: v for k, v in vars(self).items() if not k.startswith("_")
                  and k not in ("iterations", "variables", "slots", "slot_names", "learning_rate")}
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            config["learning_rate"] = {"schedule": type(self.learning_rate).__name__,
                                       "config": self.learning_rate.get_config()}
        else:
            config["learning_rate"] = self.learning_rate
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.REGISTRY[lr["schedule"]](**lr["config"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate!r})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as Keras writes it:

    v <- momentum v - lr g;  w <- w + v   (Nesterov: w <- w + momentum v - lr g).
    Sutskever et al. 2013, http://proceedings.mlr.press/v28/sutskever13.html
    """

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = real_in_range("SGD", "momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = boolean("SGD", "nesterov", nesterov)
        self.slot_names = ("velocity",) if self.momentum else ()

    def _update(self, param, grad, slots, lr, step_size, scratch):
        lr_grad = np.multiply(grad, step_size, out=scratch)
        if not self.momentum:
            param -= lr_grad
            return
        velocity = slots["velocity"]
        velocity *= self.momentum
        velocity -= lr_grad
        if self.nesterov:
            param -= lr_grad
            np.multiply(velocity, self.momentum, out=scratch)
            param += scratch
        else:
            param += velocity


class AdaGrad(Optimizer):
    """AdaGrad: accumulate squared gradients, divide each step by their root (Duchi et al. 2011,
    https://jmlr.org/papers/v12/duchi11a.html):

    a <- a + g^2;  w <- w - lr g / (sqrt(a) + epsilon).
    """

    slot_names = ("accumulator",)
    non_negative_slots = ("accumulator",)

    def __init__(self, learning_rate: LearningRate = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.initial_accumulator_value = real_in_range("AdaGrad", "initial_accumulator_value",
                                                       initial_accumulator_value, 0.0, math.inf)
        self.epsilon = real_in_range("AdaGrad", "epsilon", epsilon, 0.0, 1.0, low_open=True)

    def _create_slots(self, param):
        return {"accumulator": np.full_like(param, self.initial_accumulator_value)}

    def _update(self, param, grad, slots, lr, step_size, scratch):
        accumulator = slots["accumulator"]
        accumulator += np.multiply(grad, grad, out=scratch)
        _step_by_root(param, grad, accumulator, step_size, self.epsilon, scratch)


class RMSprop(Optimizer):
    """RMSprop (Hinton, Lecture 6e, https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf):

    s <- rho s + (1 - rho) g^2;  w <- w - lr g / (sqrt(s) + epsilon).
    """

    slot_names = ("mean_square",)
    non_negative_slots = ("mean_square",)

    def __init__(self, learning_rate: LearningRate = 0.001, rho: float = 0.9, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.rho = real_in_range("RMSprop", "rho", rho, 0.0, 1.0, high_open=True)
        self.epsilon = real_in_range("RMSprop", "epsilon", epsilon, 0.0, 1.0, low_open=True)

    def _update(self, param, grad, slots, lr, step_size, scratch):
        mean_square = slots["mean_square"]
        _moving_average(mean_square, np.multiply(grad, grad, out=scratch), self.rho, scratch)
        _step_by_root(param, grad, mean_square, step_size, self.epsilon, scratch)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980):

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    w <- w - lr_t m / (sqrt(v) + epsilon),  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).
    """

    slot_names = ("m", "v")
    non_negative_slots = ("v",)

    def __init__(self, learning_rate: LearningRate = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.beta_1 = real_in_range(type(self).__name__, "beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = real_in_range(type(self).__name__, "beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = real_in_range(type(self).__name__, "epsilon", epsilon, 0.0, 1.0, low_open=True)

    def step_size(self, learning_rate, iteration):
        return learning_rate * (math.sqrt(1 - self.beta_2**iteration) / (1 - self.beta_1**iteration))

    def _update(self, param, grad, slots, lr, step_size, scratch):
        m, v = slots["m"], slots["v"]
        _moving_average(m, grad, self.beta_1, scratch)
        _moving_average(v, np.multiply(grad, grad, out=scratch), self.beta_2, scratch)
        _step_by_root(param, m, v, step_size, self.epsilon, scratch)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101):

    w <- w - lr weight_decay w, then the Adam step.
    """

    def __init__(self, learning_rate: LearningRate = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon)
        self.weight_decay = real_in_range("AdamW", "weight_decay", weight_decay, 0.0, 1.0)

    def _update(self, param, grad, slots, lr, step_size, scratch):
        param -= np.multiply(param, lr * self.weight_decay, out=scratch)
        super()._update(param, grad, slots, lr, step_size, scratch)


REGISTRY: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (SGD, AdaGrad, RMSprop, Adam, AdamW)
}


def get(identifier: str | Optimizer, **options: Any) -> Optimizer:
    """Resolve an Optimizer instance, or a name ("adam", "AdaGrad") built with ``options`` (else its defaults)."""
    if isinstance(identifier, Optimizer):
        if options:
            raise TypeError(f"Options {sorted(options)} apply to an optimizer name, not to {identifier!r}")
        return identifier
    if isinstance(identifier, str):
        for name, cls in REGISTRY.items():
            if name.lower() == identifier.lower():
                return cls(**options)
    raise ValueError(
        f"Unknown optimizer {identifier!r}. Expected an Optimizer instance or one of: {', '.join(REGISTRY)}"
    )
