"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution in 16 matrix products of a quarter of the pixels.

Lavin & Gray 2015 (https://arxiv.org/abs/1509.09308). The output is cut into 2x2 tiles; each reads a 4x4 tile
of the padded input ``d`` and is ``Y = A^T [(G g G^T) * (B^T d B)] A`` per channel pair, ``*`` element-wise.
Over a batch, the 16 positions of the 4x4 transformed tile are 16 independent products
``M[xi] = V[xi] @ U[xi]`` of ``(tiles, channels) @ (channels, filters)``: 16 * tiles = 4 * pixels rows of
``channels`` multiply-adds, against 9 * pixels for im2col, 2.25x fewer, and no 9x column copy. The transforms
are sums and differences of strided views (the matrices below hold only 0, +-1 and +-1/2).

Training uses the same algebra: dL/dU = V^T dM with dM = A dY A^T (the products' adjoint), then
dL/dg = G^T dL/dU G; dL/dx is itself a stride-1 3x3 correlation, of the output gradient with the kernel turned
by 180 degrees and its channel axes swapped, computed by the same forward.

In float32 the result differs from the direct product by rounding only (relative error ~1e-7, measured in the
tests against the direct form).
"""

from __future__ import annotations

import math

import numpy as np

TILE = 2  # output pixels per tile side
SPAN = 4  # input pixels per tile side: TILE + 3 - 1
POSITIONS = SPAN * SPAN
KERNEL = 3
# G (4x3): the kernel transform U = G g G^T, exact in binary floating point.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# Smallest batch * output pixels worth the 16 products: below it (one image) the ~60 NumPy calls of the
# transforms cost more than im2col saves. Read at call time so the tests can lower it.
MIN_OUTPUT_PIXELS = 1024
CHUNK_VALUES = 64 * 1024  # input values a transform takes at once: with its outputs, within a core's L2 cache
# Measured on 2 cores (benchmarks/README.md): the transforms are memory-bound, 4x the input and output in size,
# and only pay with 64 channels or more (14x14x32 -> 64 broke even, 14x14x64 -> 64 trained 1.3x faster) and
# when the 2x2 tiles cover the output with little waste (7x7 -> 8x8 tiles: 30% wasted, 10% slower).
MIN_CHANNELS = 64
MAX_TILE_WASTE = 1.15  # tiled pixels / output pixels


def applies(kernel_size: tuple[int, int], strides: tuple[int, int], channels: int, out_height: int,
            out_width: int) -> bool:
    """Whether a convolution of this shape runs as Winograd F(2x2, 3x3) (on batches ``worth_it``)."""
    rows, columns = tiles(out_height, out_width)
    return (kernel_size == (KERNEL, KERNEL) and strides == (1, 1) and channels >= MIN_CHANNELS
            and TILE * rows * TILE * columns <= MAX_TILE_WASTE * out_height * out_width)


def worth_it(batch: int, out_height: int, out_width: int) -> bool:
    return batch * out_height * out_width >= MIN_OUTPUT_PIXELS


def tiles(out_height: int, out_width: int) -> tuple[int, int]:
    """Tile rows and columns covering the output (the last ones may stick out by one pixel)."""
    return -(-out_height // TILE), -(-out_width // TILE)


def planes_shape(batch: int, out_height: int, out_width: int, channels: int) -> tuple[int, ...]:
    """The zero-padded input the transform reads, its even and odd columns apart (``split_columns``): every
    tile's 4x4 window inside it."""
    rows, columns = tiles(out_height, out_width)
    return 2, batch, TILE * rows + KERNEL - 1, columns + 1, channels


def split_columns(x: np.ndarray, planes: np.ndarray, top: int, left: int) -> np.ndarray:
    """Write ``x (n, h, w, C)`` at (top, left) of the padded image held as ``planes (2, n, height, width / 2, C)``:
    padded column ``2 k + p`` is ``planes[p][:, :, k]``.

    With even and odd columns apart, every sum of the transforms runs over whole rows of ``columns * C``
    values rather than ``C`` at a time (NumPy's per-row overhead dominated: 2-3x slower). Costs one strided copy.
    """
    height, width = x.shape[1:3]
    for parity in range(2):
        first = (parity - left) % 2  # first column of x landing on this parity
        target = (left + first) // 2
        count = len(range(first, width, 2))
        planes[parity][:, top:top + height, target:target + count] = x[:, :, first::2]
    return planes


def working_elements(height: int, width: int, out_height: int, out_width: int, channels: int,
                     filters: int) -> int:
    """Array elements a training forward and backward hold per sample: both padded copies and the tiles and
    products of the forward and of dL/dx (the latter two reuse the former's memory when shapes agree)."""
    forward = math.prod(tiles(out_height, out_width)) * POSITIONS
    backward = math.prod(tiles(height, width)) * POSITIONS
    rows, columns = tiles(out_height, out_width)
    pads = (math.prod(planes_shape(1, out_height, out_width, channels)) + math.prod(
        planes_shape(1, height, width, filters)) + 2 * rows * (columns + 1) * TILE * filters)
    return pads + forward * (channels + 2 * filters) + (backward * (filters + channels) if backward != forward else 0)


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (channel, filter): ``(3, 3, C, F) -> (16, C, F)``, contiguous, in kernel's dtype."""
    _, _, channels, filters = kernel.shape
    g = G.astype(kernel.dtype)
    rows = np.matmul(g, kernel.reshape(KERNEL, KERNEL, -1).transpose(1, 0, 2))  # (j, alpha, CF): G along i
    both = np.matmul(g, rows.transpose(1, 0, 2))  # (alpha, beta, CF): then along j
    return both.reshape(POSITIONS, channels, filters)


def kernel_gradient(grad_u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/dg = G^T dL/dU G: ``(16, C, F) -> out (3, 3, C, F)``."""
    g = G.astype(grad_u.dtype)
    grad = grad_u.reshape(SPAN, SPAN, -1)
    rows = np.matmul(g.T, grad)  # (alpha, j-side beta -> ... ): G^T along beta for each alpha
    out.reshape(KERNEL, KERNEL, -1)[...] = np.matmul(g.T, rows.transpose(1, 0, 2)).transpose(1, 0, 2)
    return out


def turned_kernel(kernel: np.ndarray) -> np.ndarray:
    """The kernel of dL/dx as a correlation of dL/dy: turned by 180 degrees, channels and filters swapped."""
    return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


def batch_chunks(batch: int, values_per_sample: int) -> int:
    """Images a transform takes at once: each chunk's arrays then stay in the core's cache (measured: the same
    transform over 8 images instead of 64 at once runs 2x faster per image)."""
    return max(1, CHUNK_VALUES // max(values_per_sample, 1))


def transform_input(planes: np.ndarray, rows: int, columns: int, out: np.ndarray) -> np.ndarray:
    """V = B^T d B for every tile: ``planes`` of ``split_columns`` ``-> out (16, n, rows, columns, C)``.

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], applied along the rows, then the columns,
    a few images at a time. A tile's columns 0..3 are even[k], odd[k], even[k + 1], odd[k + 1].
    """
    n = planes.shape[1]
    step = batch_chunks(n, planes[:, 0].size)
    for start in range(0, n, step):
        even, odd = planes[0, start:start + step], planes[1, start:start + step]
        target = out[:, start:start + step]
        row_e = [even[:, a:a + TILE * rows:TILE] for a in range(SPAN)]  # row a of every tile
        row_o = [odd[:, a:a + TILE * rows:TILE] for a in range(SPAN)]
        half_e, half_o = np.empty(row_e[0].shape, planes.dtype), np.empty(row_o[0].shape, planes.dtype)
        for alpha, (first_row, second_row, operation) in enumerate(((0, 2, np.subtract), (1, 2, np.add),
                                                                     (2, 1, np.subtract), (1, 3, np.subtract))):
            operation(row_e[first_row], row_e[second_row], out=half_e)
            operation(row_o[first_row], row_o[second_row], out=half_o)
            c0, c1, c2, c3 = half_e[:, :, :columns], half_o[:, :, :columns], half_e[:, :, 1:], half_o[:, :, 1:]
            first = SPAN * alpha
            np.subtract(c0, c2, out=target[first])
            np.add(c1, c2, out=target[first + 1])
            np.subtract(c2, c1, out=target[first + 2])
            np.subtract(c1, c3, out=target[first + 3])
    return out


def multiply(v: np.ndarray, u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The 16 products M[xi] = V[xi] @ U[xi]: ``(16, ..., C) x (16, C, F) -> out (16, ..., F)``."""
    np.matmul(v.reshape(POSITIONS, -1, v.shape[-1]), u, out=out.reshape(POSITIONS, -1, u.shape[-1]))
    return out


def transform_output(m: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Y = A^T M A for every tile, written into ``out (n, oh, ow, F)``; ``m`` is ``(16, n, rows, columns, F)``.

    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]; tiles sticking out of an odd-sized output lose their last row/column.
    A few images at a time; the sums run over contiguous arrays, only the four final copies interleave.
    """
    out_height, out_width = out.shape[1:3]
    n = m.shape[1]
    step = batch_chunks(n, m[:, 0].size)
    for start in range(0, n, step):
        chunk = m[:, start:start + step]
        chunk = chunk.reshape(SPAN, SPAN, *chunk.shape[1:])
        target = out[start:start + step]
        y = np.empty(chunk.shape[2:], m.dtype)
        for a, s in enumerate((chunk[0] + chunk[1] + chunk[2], chunk[1] - chunk[2] - chunk[3])):
            height = (out_height - a + 1) // TILE
            for b in range(TILE):
                width = (out_width - b + 1) // TILE
                if b == 0:
                    np.add(s[0], s[1], out=y)
                    y += s[2]
                else:
                    np.subtract(s[1], s[2], out=y)
                    y -= s[3]
                target[:, a::TILE, b::TILE] = y[:, :height, :width]
    return out


def transform_output_gradient(planes: np.ndarray, rows: int, columns: int, out: np.ndarray) -> np.ndarray:
    """dM = A dY A^T for every tile (the adjoint of ``transform_output``): dY as ``planes (2, n, 2 rows, columns,
    F)`` of ``split_columns`` (zero where the tiles stick out) ``-> out (16, n, rows, columns, F)``.

    A = [[1, 0], [1, 1], [1, -1], [0, -1]], applied along the rows, then the columns, a few images at a time.
    """
    n = planes.shape[1]
    step = batch_chunks(n, planes[:, 0].size)
    for start in range(0, n, step):
        chunk, target = planes[:, start:start + step], out[:, start:start + step]
        top, bottom = chunk[:, :, 0::TILE], chunk[:, :, 1::TILE]  # (2 column parities, n, rows, columns, F)
        for alpha, half in enumerate((top, top + bottom, top - bottom, -bottom)):
            left, right = half[0], half[1]
            first = SPAN * alpha
            target[first] = left
            np.add(left, right, out=target[first + 1])
            np.subtract(left, right, out=target[first + 2])
            np.negative(right, out=target[first + 3])
    return out
