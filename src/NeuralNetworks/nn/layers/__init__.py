"""Layers, and ``REGISTRY``: the class names a saved model may name, mapped to their classes; nothing else loads.

A layer of one's own joins the registry with ``@layers.register``, and then saves and loads like the built-in
ones. Loading never imports code: a file naming a class nobody registered is refused, by name.
"""

from __future__ import annotations

from typing import TypeVar

from ..._validation import shown
from .augmentation import RandomAffine2D, RandomFlip, RandomImageLayer, RandomRotation, RandomTranslation, RandomZoom
from .base import ActivatedLayer, Layer
from .convolution import Conv2D
from .core import Activation, Dense, Flatten, Rescaling, Reshape
from .inputs import Input, InputLayer
from .merging import Add, Average, Concatenate, Merge, Multiply, Subtract
from .nodes import SymbolicTensor
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .regularization import Dropout

BUILT_IN: tuple[type[Layer], ...] = (
    Dense, Flatten, Reshape, Activation, Rescaling, Dropout, Conv2D, MaxPooling2D, AveragePooling2D,
    GlobalAveragePooling2D, BatchNormalization, RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
    Add, Subtract, Multiply, Average, Concatenate,
)
# The one registry of the process, like Keras' custom objects: ``register`` is how a user's class joins it.
REGISTRY: dict[str, type[Layer]] = {cls.__name__: cls for cls in BUILT_IN}

LayerClass = TypeVar("LayerClass", bound=type[Layer])


def register(cls: LayerClass) -> LayerClass:
    """Class decorator: make a layer of one's own loadable by ``models.load`` under its class name.

    >>> @layers.register
    ... class Scale(layers.Layer): ...

    Registering a class again under the same name replaces it (re-running a notebook cell); a name of a
    built-in layer is refused, so that no file can be read with another meaning than the library's.
    """
    if not isinstance(cls, type) or not issubclass(cls, Layer):
        raise TypeError(f"layers.register decorates a subclass of layers.Layer. Received: {cls!r:.80}")
    if cls is InputLayer or issubclass(cls, InputLayer):
        raise TypeError("InputLayer is not registered: a model's inputs are saved as inputs")
    existing = REGISTRY.get(cls.__name__)
    if existing in BUILT_IN and existing is not cls:
        raise ValueError(f"{cls.__name__!r} is the name of a built-in layer; give your class another name")
    REGISTRY[cls.__name__] = cls
    return cls


def registered_name(layer: Layer) -> str:
    """The name ``layer``'s class is registered under, or ValueError saying how to register it."""
    cls = type(layer)
    if REGISTRY.get(cls.__name__) is not cls:
        raise ValueError(f"layer {layer.name!r} is a {cls.__name__}, which is not registered: decorate its class "
                         "with @layers.register so that models.load can rebuild it")
    return cls.__name__


def declares_weight_shapes(layer_class: type[Layer]) -> bool:
    """True when the class says what ``build`` creates without building (``weight_shapes``): the built-in layers,
    and a layer of one's own that overrides it; the loader builds the others once to learn their shapes."""
    return layer_class in BUILT_IN or layer_class.weight_shapes is not Layer.weight_shapes


def unknown_class_message(name: object) -> str:
    """What a model file that names an unregistered layer class is told."""
    return (f"unknown layer class {shown(name)}; known: {', '.join(REGISTRY)}. If it is a layer of your own, import "
            "its class (decorated with @layers.register) before loading: loading never imports code")


__all__ = ["Layer", "ActivatedLayer", "Dense", "Flatten", "Reshape", "Activation", "Rescaling", "Dropout",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization",
           "RandomImageLayer", "RandomAffine2D", "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
           "Input", "InputLayer", "SymbolicTensor", "Merge", "Add", "Subtract", "Multiply", "Average",
           "Concatenate", "REGISTRY", "BUILT_IN", "register", "declares_weight_shapes", "registered_name",
           "unknown_class_message"]
