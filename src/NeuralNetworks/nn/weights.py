"""A model's weights: packed in contiguous buffers (the gradient path engines and optimizers work on), and
read or written as a Keras-ordered list or by "layer/name".

Once a model is built, every trainable parameter lives in one 1-D array (``params``), every gradient in a
second array of the same layout (``grads``) and every non-trainable state array (moving statistics) in a third
(``state``). Each layer's ``params[key]``, ``grads[key]`` and ``state[key]`` is a view into them, so layers
read and write their own arrays as before, while the optimizer updates all parameters with a few whole-buffer
NumPy operations, and a data-parallel engine averages all gradients with one reduction of ``grads`` (an MPI
``Allreduce``) between ``model.compute_gradients`` and ``model.apply_gradients``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .layers.base import Layer


class Segment:
    """Where one named array lives in a flat buffer: ``flat[start:stop].reshape(shape)``."""

    __slots__ = ("name", "start", "stop", "shape")

    def __init__(self, name: str, start: int, shape: tuple[int, ...]) -> None:
        self.name, self.start, self.stop, self.shape = name, start, start + int(np.prod(shape)), shape

    def view(self, flat: np.ndarray) -> np.ndarray:
        return flat[self.start:self.stop].reshape(self.shape)


def _layout(arrays: Sequence[tuple[str, np.ndarray]]) -> tuple[list[Segment], int]:
    segments, offset = [], 0
    for name, array in arrays:
        segments.append(Segment(name, offset, array.shape))
        offset = segments[-1].stop
    return segments, offset


class FlatWeights:
    """The weights of ``layers`` in three contiguous buffers, in layer order.

    A frozen layer (``trainable = False``) keeps its parameters and gradients out of ``params`` and ``grads``:
    the optimizer, which steps the whole buffer, never sees them. Its moving statistics stay in ``state``.

    Attributes:
        params: every parameter of the trainable layers, 1-D; ``param_names`` names its segments "layer/param".
        grads: the gradients, same layout as ``params``, overwritten by every ``compute_gradients``.
        state: every non-trainable array, 1-D; ``state_names`` names its segments.
    """

    def __init__(self, layers: Sequence[Layer], dtype: np.dtype) -> None:
        trainable = [(f"{layer.name}/{key}", layer, key) for layer in layers if layer.trainable
                     for key in layer.params]
        non_trainable = [(f"{layer.name}/{key}", layer, key) for layer in layers for key in layer.state]
        self._param_segments, size = _layout([(name, layer.params[key]) for name, layer, key in trainable])
        self._state_segments, state_size = _layout([(name, layer.state[key]) for name, layer, key in non_trainable])
        self.params = np.empty(size, dtype)
        self.grads = np.zeros(size, dtype)
        self.state = np.empty(state_size, dtype)
        self._layers = tuple(layers)
        self._trainable = tuple(layer.trainable for layer in layers)
        self._bindings: list[tuple[Layer, str, str, np.ndarray]] = []
        for segment, (_, layer, key) in zip(self._param_segments, trainable, strict=True):
            self._bind(layer, "params", key, segment.view(self.params))
            self._bind(layer, "grads", key, segment.view(self.grads))
        for segment, (_, layer, key) in zip(self._state_segments, non_trainable, strict=True):
            self._bind(layer, "state", key, segment.view(self.state))

    def _bind(self, layer: Layer, kind: str, key: str, view: np.ndarray) -> None:
        arrays = getattr(layer, kind)
        if key in arrays:  # the current values move into the buffer (a missing gradient starts at zero)
            view[...] = arrays[key]
        arrays[key] = view  # from now on the layer reads and writes the buffer
        self._bindings.append((layer, kind, key, view))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(segment.name for segment in self._param_segments)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(segment.name for segment in self._state_segments)

    def param_views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views "layer/param" -> array of any 1-D array laid out like ``params`` (gradients, optimizer slots)."""
        if flat.shape != self.params.shape:
            raise ValueError(f"Expected a flat array of shape {self.params.shape}. Received shape {flat.shape}")
        return {segment.name: segment.view(flat) for segment in self._param_segments}

    def is_bound_to(self, layers: Sequence[Layer]) -> bool:
        """True while every weight array of ``layers`` is still the view this object gave it (no layer was
        added, rebuilt, replaced, frozen or unfrozen, no array rebound)."""
        if len(layers) != len(self._layers) or any(a is not b for a, b in zip(layers, self._layers, strict=True)):
            return False
        if self._trainable != tuple(layer.trainable for layer in layers):
            return False
        count = sum((len(layer.params) + len(layer.grads)) * layer.trainable + len(layer.state) for layer in layers)
        return count == len(self._bindings) and all(
            getattr(layer, kind).get(key) is view for layer, kind, key, view in self._bindings)


def weight_arrays(layers: Sequence[Layer]) -> list[tuple[str, np.ndarray]]:
    """("layer/name", array) in Keras' order: layer by layer, its trainable arrays then its non-trainable ones
    (Dense: kernel, bias; BatchNormalization: gamma, beta, moving_mean, moving_variance)."""
    return [(f"{layer.name}/{key}", value) for layer in layers
            for key, value in (*layer.params.items(), *layer.state.items())]


def set_weight_list(layers: Sequence[Layer], weights: Sequence[np.ndarray]) -> None:
    """Copy a list of arrays in ``weight_arrays`` order into the layers; every shape must match."""
    if isinstance(weights, Mapping):
        raise TypeError("set_weights takes a list of arrays in layer order, as Keras does; for a dict keyed "
                        "'layer/param' use set_named_weights")
    targets = _targets(layers)
    if len(weights) != len(targets):
        raise ValueError(f"set_weights expects {len(targets)} arrays ({', '.join(targets)}). "
                         f"Received {len(weights)}")
    for (name, (layer, key, target)), value in zip(targets.items(), weights, strict=True):
        _assign(layer, key, target, value, name, "set_weights")


def set_named_weights(layers: Sequence[Layer], weights: Mapping[str, np.ndarray], source: str) -> None:
    """Copy arrays keyed "layer/name" into the layers; every key and shape must match exactly."""
    targets = _targets(layers)
    missing, unexpected = sorted(set(targets) - set(weights)), sorted(set(weights) - set(targets))
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not match the model (missing: {missing or 'none'}; "
                         f"unexpected: {unexpected or 'none'})")
    for name, (layer, key, target) in targets.items():
        _assign(layer, key, target, weights[name], name, source)


def _targets(layers: Sequence[Layer]) -> dict[str, tuple[Layer, str, np.ndarray]]:
    """"layer/name" -> (layer, name, array), in ``weight_arrays`` order."""
    return {f"{layer.name}/{key}": (layer, key, value) for layer in layers
            for key, value in (*layer.params.items(), *layer.state.items())}


def _assign(layer: Layer, key: str, target: np.ndarray, value: object, name: str, source: str) -> None:
    """``target[...] = value`` once ``value`` is known to be finite floats of ``target``'s shape that the layer
    accepts (``Layer.check_weight``: a variance is never negative)."""
    value = np.asarray(value)
    if value.shape != target.shape:
        raise ValueError(f"{source}: shape mismatch for {name}: model expects {target.shape}, got {value.shape}")
    if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
        raise ValueError(f"{source}: {name} must hold finite floating-point values")
    try:
        layer.check_weight(key, value)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    target[...] = value
