"""Window geometry shared by convolution and pooling on channels-last (NHWC) images.

Output lengths and the "same" padding of Keras and TensorFlow (output = ceil(size / stride), the odd padding
pixel going to the bottom / right), and where each output pixel's window lies in the padded input.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..._validation import choice, positive_int

PADDINGS = ("valid", "same")
SPATIAL_RANK = 3  # a sample is (height, width, channels)
# Inputs up to this many values (one 28x28x32 image) pool by whole rows (``_reduce_tiles``): fewer, longer NumPy
# calls, 1.25-1.35x faster for 2x2 windows of one image; larger ones by window offsets, 1.1-2x faster there
# (measured on 28x28x32 and 14x14x64 batches of 1 to 64: the rows' intermediate leaves the cache).
SMALL_INPUT_VALUES = 1 << 15

Pair = tuple[int, int]


def as_pair(owner: str, name: str, value: object) -> Pair:
    """``3 -> (3, 3)``; ``(2, 3)`` stays; anything else raises naming the argument."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{owner} expects `{name}` to be a positive integer or a pair of them. "
                         f"Received: {name}={value!r}")
    first, second = (positive_int(owner, name, v) for v in value)
    return first, second


def as_padding(owner: str, value: object) -> str:
    return choice(owner, "padding", value, PADDINGS)


def output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Output positions along one axis: ``ceil(size / stride)`` for "same", else ``floor((size - window) /
    stride) + 1`` (0 or less when the window does not fit)."""
    if padding == "same":
        return -(-size // stride)
    return (size - window) // stride + 1


def padding_amounts(size: int, window: int, stride: int, padding: str) -> Pair:
    """(before, after) padding along one axis; "same" pads ``max((out - 1) * stride + window - size, 0)`` in
    total, the extra pixel after, as TensorFlow does."""
    if padding == "valid":
        return 0, 0
    total = max((output_length(size, window, stride, padding) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def strided_view(array: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """A read-only view of ``array``'s memory with ``shape`` and ``strides`` (within its bounds), as ``as_strided``
    makes, but built directly on a contiguous array: 1 us instead of 3, counted twice per image in a small CNN."""
    if not array.flags.c_contiguous:
        return as_strided(array, shape=shape, strides=strides, writeable=False)
    view = np.ndarray(shape, array.dtype, buffer=array, strides=strides)
    view.flags.writeable = False
    return view


class WindowGeometry:
    """Where each output pixel's window lies in the padded input, for one layer's fixed sample shape."""

    def __init__(self, owner: str, input_shape: tuple[int, ...], window: Pair, strides: Pair, padding: str):
        if len(input_shape) != SPATIAL_RANK:
            raise ValueError(f"{owner} expects samples of shape (height, width, channels). "
                             f"Received input shape {tuple(input_shape)}")
        self.height, self.width, self.channels = input_shape
        self.window, self.strides = window, strides
        self.out_height = output_length(self.height, window[0], strides[0], padding)
        self.out_width = output_length(self.width, window[1], strides[1], padding)
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"{owner}: a {window[0]}x{window[1]} window does not fit in a "
                             f"{self.height}x{self.width} input with padding={padding!r}")
        self.top, bottom = padding_amounts(self.height, window[0], strides[0], padding)
        self.left, right = padding_amounts(self.width, window[1], strides[1], padding)
        self.padded_height = self.height + self.top + bottom
        self.padded_width = self.width + self.left + right
        self.is_padded = self.padded_height != self.height or self.padded_width != self.width

    def position(self, i: int, j: int) -> tuple[slice, slice, slice]:
        """Index of the input pixel at window offset (i, j) for every output pixel: an (n, oh, ow, c) view."""
        stride_h, stride_w = self.strides
        return (slice(None), slice(i, i + stride_h * (self.out_height - 1) + 1, stride_h),
                slice(j, j + stride_w * (self.out_width - 1) + 1, stride_w))

    def interior(self) -> tuple[slice, slice, slice]:
        """Index of the unpadded input inside the padded one."""
        return slice(None), slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def padded_shape(self, batch: int) -> tuple[int, int, int, int]:
        """Shape of a batch of padded inputs (or of their gradient): (batch, hp, wp, c)."""
        return batch, self.padded_height, self.padded_width, self.channels

    def unpadded(self, padded: np.ndarray) -> np.ndarray:
        """The input's part of a padded batch (a view; the batch itself without padding), e.g. dL/dx from the
        gradient with respect to the padded input."""
        return padded[self.interior()] if self.is_padded else padded

    def windows(self, padded: np.ndarray) -> np.ndarray:
        """Read-only view (n, oh, ow, kh, kw, c) of every window of ``padded`` (n, hp, wp, c); no copy."""
        batch, row, column, channel = padded.strides
        shape = (len(padded), self.out_height, self.out_width, *self.window, padded.shape[-1])
        strides = (batch, row * self.strides[0], column * self.strides[1], row, column, channel)
        return strided_view(padded, shape, strides)

    def offsets(self, padded: np.ndarray) -> np.ndarray:
        """Read-only view (kh, kw, n, oh, ow, c) of ``padded``: ``position(i, j)`` for every window offset at
        once (the input pixel each output pixel reads at that offset); no copy."""
        batch, row, column, channel = padded.strides
        shape = (*self.window, len(padded), self.out_height, self.out_width, padded.shape[-1])
        strides = (row, column, batch, row * self.strides[0], column * self.strides[1], channel)
        return strided_view(padded, shape, strides)

    def reduce_windows(self, padded: np.ndarray, reduce: np.ufunc) -> np.ndarray:
        """``reduce`` (np.maximum, np.add) folded over the window offsets of ``padded``: an (n, oh, ow, c) array.

        ``kh * kw - 1`` element-wise operations on strided views: 5x faster than reducing a reshaped
        ``(n, oh, kh, ow, kw, c)`` view over two axes, and the same code serves overlapping and padded windows.
        Windows side by side that tile a small input fold whole rows first (``_reduce_tiles``).
        """
        if padded.size <= SMALL_INPUT_VALUES and self.tiles(padded):
            return self._reduce_tiles(padded, reduce)
        result = padded[self.position(0, 0)].copy()
        for i in range(self.window[0]):
            for j in range(self.window[1]):
                if i or j:
                    reduce(result, padded[self.position(i, j)], out=result)
        return result

    @property
    def tiled(self) -> bool:
        """True when the windows lie side by side and cover the padded input exactly: every input pixel is in
        exactly one window (a stride larger than the window leaves pixels in none)."""
        return self.window == self.strides and (self.out_height * self.window[0], self.out_width * self.window[1]) \
            == (self.padded_height, self.padded_width)

    def tiles(self, padded: np.ndarray) -> bool:
        """True when ``padded`` (contiguous) is ``tiled`` by windows of two or more values each: pooling's
        default, a 2x2 window with stride 2 on an even-sized image."""
        return self.tiled and self.window != (1, 1) and padded.flags.c_contiguous

    def _reduce_tiles(self, padded: np.ndarray, reduce: np.ufunc) -> np.ndarray:
        """``reduce_windows`` for ``tiles``: the window's rows folded as whole image rows ``(n * oh, kh, wp * c)``,
        then its columns as runs of ``c`` values: ``kh + kw - 2`` calls instead of ``kh * kw``."""
        (kh, kw), channels = self.window, padded.shape[-1]
        rows = padded.reshape(-1, kh, self.padded_width * channels)
        folded = rows[:, 0]
        if kh > 1:
            folded = reduce(folded, rows[:, 1])
            for i in range(2, kh):
                reduce(folded, rows[:, i], out=folded)
        columns = folded.reshape(-1, kw, channels)
        result = columns[:, 0]
        if kw > 1:
            result = reduce(result, columns[:, 1])
            for j in range(2, kw):
                reduce(result, columns[:, j], out=result)
        return result.reshape(len(padded), self.out_height, self.out_width, channels)
