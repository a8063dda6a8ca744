"""Layers. ``REGISTRY`` maps the class names a saved model may name to their classes; nothing else loads."""

from .augmentation import RandomAffine2D, RandomFlip, RandomImageLayer, RandomRotation, RandomTranslation, RandomZoom
from .base import ActivatedLayer, Layer
from .convolution import Conv2D
from .core import Activation, Dense, Flatten, Rescaling, Reshape
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .regularization import Dropout

REGISTRY: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, Flatten, Reshape, Activation, Rescaling, Dropout, Conv2D, MaxPooling2D, AveragePooling2D,
                GlobalAveragePooling2D, BatchNormalization, RandomFlip, RandomTranslation, RandomRotation,
                RandomZoom)
}

__all__ = ["Layer", "ActivatedLayer", "Dense", "Flatten", "Reshape", "Activation", "Rescaling", "Dropout",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization",
           "RandomImageLayer", "RandomAffine2D", "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
           "REGISTRY"]
