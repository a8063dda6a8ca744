"""Winograd F(4x4, 3x3): a stride-1 3x3 convolution in 36 matrix products over 4x4 output tiles.

Lavin & Gray 2015 (https://arxiv.org/abs/1509.09308), interpolation points 0, +-1, +-2 and infinity. The same
algebra and the same functions as ``winograd`` (F(2x2, 3x3)), with 6x6 input tiles: 36 products per 16 output
pixels, 2.25 multiply-adds per pixel and channel pair against 9 for im2col and 4 for F(2x2). Conv2D takes
whichever of the two needs fewer products on its map (``products``): F(4x4) on every map of 5x5 pixels or more
but the few that 2x2 tiles cover much better (7x7: 2x2 tiles of 4x4 cover 8x8, 144 products per channel pair
against F(2x2)'s 256 and im2col's 441; 14x14: 576 against 784 and 1764).

The transforms multiply by small integers, so they run as matrix products (``B^T d B`` as a product along the
rows, then one along the columns), a chunk of images at a time. In float32 the result differs from the direct
product by rounding, about 3x F(2x2)'s (relative error 3-7e-6 of the output's scale against 1-2e-6, measured in
the tests against the direct form in float64): the transforms multiply by up to 8 and add up to 6 terms.
"""

from __future__ import annotations

import math

import numpy as np

from .windows import strided_view
from .winograd import KERNEL, chunk_images, multiply, tile_grid, tiled_input_shape, turned_kernel

__all__ = ["KERNEL", "TILE", "POSITIONS", "multiply", "turned_kernel"]

TILE = 4  # output pixels per tile side
SPAN = TILE + KERNEL - 1  # input pixels per tile side
POSITIONS = SPAN * SPAN
BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
              dtype=np.float64)


def products(out_height: int, out_width: int) -> int:
    """Multiply-adds per channel pair and image: 36 per 4x4 tile (F(2x2): 16 per 2x2 tile, im2col: 9 per pixel)."""
    return POSITIONS * math.prod(tiles(out_height, out_width))


def tiles(out_height: int, out_width: int) -> tuple[int, int]:
    """Tile rows and columns covering the output (the last ones may stick out by up to three pixels)."""
    return tile_grid(out_height, out_width, TILE)


def padded_shape(batch: int, out_height: int, out_width: int, channels: int) -> tuple[int, ...]:
    """The zero-bordered input the tiles read: every tile's 6x6 window inside it."""
    return tiled_input_shape(batch, out_height, out_width, channels, TILE)


def _chunk(batch: int, per_position: int) -> int:
    return chunk_images(batch, POSITIONS * per_position)


def input_scratch_size(batch: int, rows: int, columns: int, channels: int) -> int:
    """Values ``transform_input`` needs as scratch: a chunk's 36 windows and room for its row products (six
    per tile row and pixel column, fewer than 36 per tile: 6 (4 columns + 2) <= 36 columns)."""
    per_position = rows * columns * channels
    return 2 * POSITIONS * _chunk(batch, per_position) * per_position


def output_scratch_size(batch: int, rows: int, columns: int, filters: int) -> int:
    """Values ``transform_output`` needs as scratch: a chunk's column products and its 4x4 output tiles."""
    per_position = rows * columns * filters
    return (TILE * SPAN + TILE * TILE) * _chunk(batch, per_position) * per_position


def gradient_scratch_size(batch: int, rows: int, columns: int, filters: int) -> int:
    """Values ``transform_output_gradient`` needs as scratch: a chunk's 4x4 gradient tiles and row products."""
    per_position = rows * columns * filters
    return (TILE * TILE + SPAN * TILE) * _chunk(batch, per_position) * per_position


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (channel, filter): ``(3, 3, C, F) -> (36, C, F)``, as two products, along the
    kernel's rows, then its columns, in the kernel's dtype (G's 1/6 and 1/24 rounded to it)."""
    _, _, channels, filters = kernel.shape
    g = G.astype(kernel.dtype)
    rows = np.matmul(g, np.ascontiguousarray(kernel).reshape(KERNEL, -1)).reshape(SPAN, KERNEL, -1)  # (a, j, CF)
    return np.matmul(g, rows).reshape(POSITIONS, channels, filters)  # (a, b, CF)


def kernel_gradient(grad_u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/dg = G^T dL/dU G: ``(36, C, F) -> out (3, 3, C, F)``."""
    g = G.astype(grad_u.dtype)
    rows = np.matmul(g.T, grad_u.reshape(SPAN, -1)).reshape(KERNEL, SPAN, -1)  # (i, b, CF)
    np.matmul(g.T, rows, out=out.reshape(KERNEL, KERNEL, -1))  # (i, j, CF)
    return out


def transform_input(padded: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """V = B^T d B for every tile of ``padded`` (``padded_shape``) ``-> out (36, n, rows, columns, C)``, a chunk
    at a time: first B^T along the rows, as products straight from each tile row's six image rows (1.5x the
    image, where the 36 windows are 2.25x); then the chunk's 36 column windows of that copied out in one call,
    and B^T along the columns (``input_scratch_size`` values of ``scratch``). The same sums in the same order as
    the windows first, so the same floats, 20-25% faster."""
    n, _, padded_width, _ = padded.shape
    rows, columns, channels = out.shape[2:]
    step = _chunk(n, rows * columns * channels)
    bt = BT.astype(padded.dtype)
    size = POSITIONS * step * rows * columns * channels
    for start in range(0, n, step):
        count = min(step, n - start)
        images = padded[start:start + count]
        batch_stride, row_stride, _, item = images.strides
        image_rows = strided_view(images, (count, rows, SPAN, padded_width * channels),
                                  (batch_stride, TILE * row_stride, row_stride, item))
        row_products = scratch[size:size + count * rows * SPAN * padded_width * channels].reshape(
            count, rows, SPAN, padded_width, channels)  # (n, tile row, a, x, C)
        np.matmul(bt, image_rows, out=row_products.reshape(image_rows.shape))
        windows = scratch[:POSITIONS * count * rows * columns * channels].reshape(
            SPAN, SPAN, count, rows, columns, channels)  # (a, j, n, tile row, tile column, C)
        tile_stride, tile_row_stride, a_stride, x_stride, channel_stride = row_products.strides
        np.copyto(windows, strided_view(row_products, windows.shape, (
            a_stride, x_stride, tile_stride, tile_row_stride, TILE * x_stride, channel_stride)))
        np.matmul(bt, windows.reshape(SPAN, SPAN, -1), out=out[:, start:start + count].reshape(SPAN, SPAN, -1))
    return out


def transform_output(m: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Y = A^T M A for every tile, written into ``out (n, oh, ow, F)``; ``m`` is ``(36, n, rows, columns, F)``:
    one product with A^T along the columns, one along the rows, then one copy of the chunk's 16 pixel grids
    into place (tiles sticking out of the output lose their last rows or columns on the way)."""
    n, rows, columns, filters = m.shape[1:]
    out_height, out_width = out.shape[1:3]
    whole = (out_height, out_width) == (TILE * rows, TILE * columns)
    step = _chunk(n, rows * columns * filters)
    at = AT.astype(m.dtype)
    size = SPAN * TILE * step * rows * columns * filters
    for start in range(0, n, step):
        count = min(step, n - start)
        per_position = count * rows * columns * filters
        column_products = scratch[:SPAN * TILE * per_position].reshape(SPAN, TILE, per_position)
        pixels = scratch[size:size + TILE * TILE * per_position].reshape(TILE, TILE, count, rows, columns, filters)
        np.matmul(at, m[:, start:start + count].reshape(SPAN, SPAN, -1), out=column_products)
        np.matmul(at, column_products.reshape(SPAN, -1), out=pixels.reshape(TILE, -1))
        grids = pixels.transpose(2, 3, 0, 4, 1, 5)  # (count, rows, 4, columns, 4, F)
        if whole:
            out[start:start + count].reshape(grids.shape)[...] = grids
        else:  # through the spent column products, then cropped
            tiled = scratch[:TILE * TILE * per_position].reshape(grids.shape)
            tiled[...] = grids
            out[start:start + count] = tiled.reshape(count, TILE * rows, TILE * columns, filters)[
                :, :out_height, :out_width]
    return out


def transform_output_gradient(grad: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """dM = A dY A^T for every tile (the adjoint of ``transform_output``): dY ``(n, 4 rows, 4 columns, F)``,
    zero where the tiles stick out of the output, ``-> out (36, n, rows, columns, F)``: a chunk's 16 pixel
    grids copied out, then one product with A along the rows and one along the columns."""
    n, rows, columns, filters = out.shape[1:]
    grid = grad.reshape(n, rows, TILE, columns, TILE, filters)
    step = _chunk(n, rows * columns * filters)
    a = AT.T.astype(grad.dtype)
    size = TILE * TILE * step * rows * columns * filters
    for start in range(0, n, step):
        count = min(step, n - start)
        per_position = count * rows * columns * filters
        pixels = scratch[:TILE * TILE * per_position].reshape(TILE, TILE, count, rows, columns, filters)
        row_products = scratch[size:size + SPAN * TILE * per_position].reshape(SPAN, TILE, per_position)
        np.copyto(pixels, grid[start:start + count].transpose(2, 4, 0, 1, 3, 5))
        np.matmul(a, pixels.reshape(TILE, -1), out=row_products.reshape(SPAN, -1))
        np.matmul(a, row_products, out=out[:, start:start + count].reshape(SPAN, SPAN, -1))
    return out
