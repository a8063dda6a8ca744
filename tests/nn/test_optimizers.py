"""Golden first steps of each optimizer, computed by hand from its update rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from NeuralNetworks.nn import optimizers, schedules

W0 = np.array([1.0, -2.0])
G = np.array([0.5, -1.0])


def step(optimizer, times=1, grad=G):
    param = W0.copy()
    optimizer.build([param])
    for _ in range(times):
        optimizer.apply([grad])
    assert optimizer.variables[0] is param  # updated in place
    return param


def test_sgd_plain():
    np.testing.assert_allclose(step(optimizers.SGD(0.1)), W0 - 0.1 * G)


def test_sgd_momentum_two_steps():
    # v1 = -lr g; w1 = w0 + v1; v2 = m v1 - lr g; w2 = w1 + v2
    v1 = -0.1 * G
    v2 = 0.9 * v1 - 0.1 * G
    np.testing.assert_allclose(step(optimizers.SGD(0.1, momentum=0.9), times=2), W0 + v1 + v2)


def test_sgd_nesterov_first_step():
    v1 = -0.1 * G
    np.testing.assert_allclose(step(optimizers.SGD(0.1, momentum=0.9, nesterov=True)), W0 + 0.9 * v1 - 0.1 * G)


def test_adagrad_accumulates_squared_gradients():
    # a1 = 0.1 + g^2; w1 = w0 - lr g / (sqrt(a1) + eps); a2 = a1 + g^2; w2 = w1 - lr g / (sqrt(a2) + eps)
    a1 = 0.1 + G**2
    w1 = W0 - 0.01 * G / (np.sqrt(a1) + 1e-7)
    a2 = a1 + G**2
    w2 = w1 - 0.01 * G / (np.sqrt(a2) + 1e-7)
    optimizer = optimizers.AdaGrad(learning_rate=0.01)
    np.testing.assert_allclose(step(optimizer, times=2), w2)
    np.testing.assert_allclose(optimizer.slots[0]["accumulator"], a2)


def test_rmsprop_first_step():
    s = 0.1 * G**2
    np.testing.assert_allclose(step(optimizers.RMSprop(0.001)), W0 - 0.001 * G / (np.sqrt(s) + 1e-7))


def test_adam_first_step_moves_by_learning_rate_times_sign():
    m, v = 0.1 * G, 0.001 * G**2
    lr_t = 0.001 * math.sqrt(1 - 0.999) / (1 - 0.9)
    expected = W0 - lr_t * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(step(optimizers.Adam()), expected)
    np.testing.assert_allclose(expected, W0 - 0.001 * np.sign(G), rtol=1e-5)


def test_adamw_decays_weights_before_the_adam_step():
    decayed = W0 - 0.001 * 0.1 * W0
    m, v = 0.1 * G, 0.001 * G**2
    lr_t = 0.001 * math.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(step(optimizers.AdamW(weight_decay=0.1)), decayed - lr_t * m / (np.sqrt(v) + 1e-7))


def test_schedule_drives_the_learning_rate():
    optimizer = optimizers.SGD(schedules.StepDecay(0.1, step_size=1, drop=0.5))
    w = step(optimizer, times=2)
    np.testing.assert_allclose(w, W0 - 0.1 * G - 0.05 * G)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: optimizers.SGD(learning_rate=-1), r"SGD expects `learning_rate` in \(0.0, inf\]. Received: learning_rate=-1"),
        (lambda: optimizers.SGD(momentum=1.5), r"momentum=1.5"),
        (lambda: optimizers.Adam(beta_1="a"), r"Adam expects a real number `beta_1`. Received: beta_1='a'"),
        (lambda: optimizers.get("adamax"), r"Unknown optimizer 'adamax'"),
    ],
)
def test_bad_optimizer_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_get_builds_a_named_optimizer_with_options():
    optimizer = optimizers.get("AdaGrad", learning_rate=0.05)
    assert isinstance(optimizer, optimizers.AdaGrad) and optimizer.learning_rate == 0.05
    with pytest.raises(TypeError, match="apply to an optimizer name"):
        optimizers.get(optimizers.SGD(), learning_rate=0.1)


def test_sgd_momentum_zero_is_valid():
    assert optimizers.SGD(momentum=0).momentum == 0.0


def test_config_round_trip():
    for cls in optimizers.REGISTRY.values():
        optimizer = cls(learning_rate=0.05)
        rebuilt = cls.from_config(optimizer.get_config())
        assert rebuilt.get_config() == optimizer.get_config()
    scheduled = optimizers.Adam(schedules.CosineDecay(0.1, decay_steps=10))
    rebuilt = optimizers.Adam.from_config(scheduled.get_config())
    assert rebuilt.learning_rate(5) == pytest.approx(scheduled.learning_rate(5))
