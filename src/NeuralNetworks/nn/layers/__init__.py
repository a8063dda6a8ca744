"""Layers. ``REGISTRY`` maps the class names a saved model may name to their classes; nothing else loads."""

from .base import ActivatedLayer, Layer
from .core import Activation, Dense, Flatten, Rescaling, Reshape
from .regularization import Dropout

REGISTRY: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (Dense, Flatten, Reshape, Activation, Rescaling, Dropout)
}

__all__ = ["Layer", "ActivatedLayer", "Dense", "Flatten", "Reshape", "Activation", "Rescaling", "Dropout",
           "REGISTRY"]
