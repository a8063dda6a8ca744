"""NeuralNetworks.nn: the Keras-style API. ``from NeuralNetworks.nn import models, layers, optimizers, losses``."""

from . import (
    activations,
    callbacks,
    gradcheck,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    saving,
    schedules,
    training,
    weights,
)

__all__ = ["activations", "callbacks", "gradcheck", "initializers", "layers", "losses", "metrics", "models",
           "optimizers", "saving", "schedules", "training", "weights"]
