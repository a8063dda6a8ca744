"""Batched affine resampling of images, the arithmetic behind the augmentation layers.

``SamplingPlan`` turns one 2x3 matrix per image into, for every output pixel, the padded-input pixels it reads
and their interpolation weights; applying the plan is four gathers and multiply-adds over the whole batch, and
its transpose (the gradient) is a ``bincount``. No loop over images or pixels.
"""

from __future__ import annotations

import numpy as np

from .base import BufferCache

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")

PAD = 2  # pixels added around each image so that every interpolation corner of a folded coordinate is inside
NUMPY_PAD_MODES = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}
BILINEAR_CORNERS = 4


def _fold(coordinate: np.ndarray, size: int, fill_mode: str, scratch: np.ndarray) -> None:
    """Move continuous source coordinates (pixel centres at 0 .. size - 1), in place, to equivalent ones at most
    two pixels outside the image, where the padding holds the extension ``fill_mode`` describes: reflect
    ``(d c b a | a b c d | d c b a)`` folds about the outer pixel edges, wrap is periodic, nearest repeats the
    edge pixel, and constant keeps a border of ``fill_value`` (anything further out reads the same border)."""
    if fill_mode == "constant":
        np.clip(coordinate, -1, size, out=coordinate)
        return
    if fill_mode == "nearest":
        np.clip(coordinate, 0, size - 1, out=coordinate)
        return
    # c mod period, as c - period * floor(c / period): several times faster than np.mod on floats
    period, shift = (size, 0.0) if fill_mode == "wrap" else (2 * size, 0.5)
    coordinate += shift
    np.multiply(coordinate, 1 / period, out=scratch)
    np.floor(scratch, out=scratch)
    scratch *= period
    coordinate -= scratch
    coordinate -= shift
    if fill_mode == "reflect":  # the second half of the period is the mirror image
        np.subtract(2 * size - 1, coordinate, out=coordinate, where=coordinate > size - 0.5)


class SamplingPlan:
    """Where each output value reads the padded input, and with what weight:
    ``out = sum_k weights[k] * padded[indices[k]]``, the batch padded by ``PAD`` pixels as ``fill_mode`` says.

    ``indices`` and ``weights`` are ``(corners, n * h * w)``: one row per interpolation corner (4 bilinear, 1
    nearest), indices into the padded batch flattened to ``(n * (h + 2 PAD) * (w + 2 PAD), channels)``. The
    plan is linear in the input, so backward is its transpose: each output gradient goes back to the pixels it
    read, times the weight, and padding pixels hand theirs to the image pixels they copy.

    Every array lives in ``buffers``, reused from batch to batch: allocating (and page-faulting) the dozen
    batch-sized temporaries afresh made the plan 5x slower.
    """

    def __init__(self, matrices: np.ndarray, image_shape: tuple[int, int, int], interpolation: str,
                 fill_mode: str, dtype: np.dtype, buffers: BufferCache) -> None:
        n = len(matrices)
        height, width, _ = image_shape
        self.image_shape, self.fill_mode, self.buffers = image_shape, fill_mode, buffers
        self.padded_shape = (n, height + 2 * PAD, width + 2 * PAD)
        padded_width = width + 2 * PAD
        index_type = np.int32 if np.prod(self.padded_shape) < np.iinfo(np.int32).max else np.intp
        shape = (n, height, width)
        m = matrices.astype(dtype)[:, :, :, np.newaxis, np.newaxis]  # (n, 2, 3, 1, 1): broadcast over pixels
        columns, rows = np.arange(width, dtype=dtype), np.arange(height, dtype=dtype)[:, np.newaxis]
        source_x, source_y = buffers.get("source_x", shape, dtype), buffers.get("source_y", shape, dtype)
        np.add(m[:, 0, 0] * columns, m[:, 0, 1] * rows + m[:, 0, 2], out=source_x)
        np.add(m[:, 1, 0] * columns, m[:, 1, 1] * rows + m[:, 1, 2], out=source_y)
        left, top = buffers.get("left", shape, dtype), buffers.get("top", shape, dtype)
        _fold(source_x, width, fill_mode, scratch=left)
        _fold(source_y, height, fill_mode, scratch=top)
        # the padded pixel each output's first corner reads: image start + (row + PAD) * padded width + column + PAD
        first_pixel = (np.arange(n, dtype=index_type) * (self.padded_shape[1] * padded_width)
                       + PAD * padded_width + PAD).reshape(n, 1, 1)
        if interpolation == "nearest":
            source_x += 0.5
            source_y += 0.5
        np.floor(source_x, out=left)
        np.floor(source_y, out=top)
        corners = 1 if interpolation == "nearest" else BILINEAR_CORNERS
        self.indices = buffers.get(f"indices_{corners}", (corners, n * height * width), index_type)
        first = self.indices[0].reshape(shape)
        np.multiply(top, padded_width, out=first, casting="unsafe")
        np.add(first, left, out=first, casting="unsafe")
        first += first_pixel
        if interpolation == "nearest":
            self.weights = None
            return
        for k, offset in enumerate((1, padded_width, padded_width + 1), start=1):
            np.add(self.indices[0], offset, out=self.indices[k])
        fx, fy = np.subtract(source_x, left, out=source_x).reshape(-1), np.subtract(source_y, top, out=source_y)
        fy = fy.reshape(-1)
        gx, gy = np.subtract(1, fx, out=left.reshape(-1)), np.subtract(1, fy, out=top.reshape(-1))
        self.weights = buffers.get("weights", (BILINEAR_CORNERS, n * height * width), dtype)
        for k, (wx, wy) in enumerate(((gx, gy), (fx, gy), (gx, fy), (fx, fy))):
            np.multiply(wx, wy, out=self.weights[k])

    def _border(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the padding pixels in one padded image, and the image pixel each copies (-1: none)."""
        height, width, _ = self.image_shape
        source = np.pad(np.arange(height * width).reshape(height, width), PAD,
                        mode=NUMPY_PAD_MODES[self.fill_mode],
                        **({"constant_values": -1} if self.fill_mode == "constant" else {})).reshape(-1)
        inside = np.zeros(self.padded_shape[1:], dtype=bool)
        inside[PAD:PAD + height, PAD:PAD + width] = True
        border = np.flatnonzero(~inside.reshape(-1))
        return border, source[border]

    def apply(self, x: np.ndarray, fill_value: float) -> np.ndarray:
        """Resample the batch ``x`` ``(n, h, w, channels)``: the transformed images, a new array."""
        n, height, width, channels = x.shape
        padded = self.buffers.get(f"padded_{fill_value}", (*self.padded_shape, channels), x.dtype,
                                  fill=fill_value)  # a constant border is written once, here, and kept
        padded[:, PAD:PAD + height, PAD:PAD + width] = x
        if self.fill_mode != "constant":
            border, source = self._border()
            padded.reshape(n, -1, channels)[:, border] = x.reshape(n, -1, channels)[:, source]
        flat = padded.reshape(-1, channels)
        if self.weights is None:
            return flat[self.indices[0]].reshape(x.shape)
        out = flat[self.indices[0]]
        out *= self.weights[0][:, np.newaxis]
        corner = self.buffers.get("corner", out.shape, out.dtype)
        for indices, weights in zip(self.indices[1:], self.weights[1:], strict=True):
            np.take(flat, indices, axis=0, out=corner)
            corner *= weights[:, np.newaxis]
            out += corner
        return out.reshape(x.shape)

    def transpose(self, grad_output: np.ndarray) -> np.ndarray:
        """The gradient at the input ``(n, h, w, channels)`` for the output gradient of the same shape."""
        n, height, width, channels = grad_output.shape
        border, source = self._border()
        copies = source >= 0  # constant borders copy nothing: their gradient goes nowhere
        inside = (slice(None), slice(PAD, PAD + height), slice(PAD, PAD + width))
        copied_to = (np.arange(n)[:, np.newaxis] * (height * width) + source[copies]).reshape(-1)
        grad_input = np.empty(grad_output.shape, dtype=grad_output.dtype)
        grad_flat = grad_output.reshape(-1, channels)
        indices = self.indices.reshape(-1)
        for channel in range(channels):
            weighted = grad_flat[:, channel] if self.weights is None else self.weights * grad_flat[:, channel]
            grad_padded = np.bincount(indices, weights=weighted.reshape(-1), minlength=np.prod(self.padded_shape))
            grad_padded = grad_padded.reshape(self.padded_shape)
            from_border = grad_padded.reshape(n, -1)[:, border[copies]].reshape(-1)
            grad_input[..., channel] = grad_padded[inside] + np.bincount(
                copied_to, weights=from_border, minlength=n * height * width).reshape(n, height, width)
        return grad_input
