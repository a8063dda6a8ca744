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
    parallel,
    saving,
    schedules,
    sources,
    training,
    weights,
)

__all__ = ["activations", "callbacks", "gradcheck", "initializers", "layers", "losses", "metrics", "models",
           "optimizers", "parallel", "saving", "schedules", "sources", "training", "weights"]
