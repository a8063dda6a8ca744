"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution in 16 matrix products of a quarter of the pixels.

Lavin & Gray 2015 (https://arxiv.org/abs/1509.09308). The output is cut into 2x2 tiles; each reads a 4x4 tile
of the padded input ``d`` and is ``Y = A^T [(G g G^T) * (B^T d B)] A`` per channel pair, ``*`` element-wise.
Over a batch, the 16 positions of the 4x4 transformed tile are 16 independent products
``M[xi] = V[xi] @ U[xi]`` of ``(tiles, channels) @ (channels, filters)``: 16 * tiles = 4 * pixels rows of
``channels`` multiply-adds, against 9 * pixels for im2col, 2.25x fewer, and no 9x column copy. The transforms
are sums and differences (the matrices below hold only 0, +-1 and +-1/2) over contiguous copies of a chunk's
windows. This module also holds what both Winograd modules share (``applies``, ``chunk_images``, ``multiply``);
``winograd4`` is F(4x4, 3x3), and Conv2D takes whichever needs fewer products on its map.

Training uses the same algebra: dL/dU = V^T dM with dM = A dY A^T (the products' adjoint), then
dL/dg = G^T dL/dU G; dL/dx is itself a stride-1 3x3 correlation, of the output gradient with the kernel turned
by 180 degrees and its channel axes swapped, computed by the same forward.

In float32 the result differs from the direct product by rounding only (up to 2e-6 of the output's scale,
measured in the tests against the direct form in float64).
"""

from __future__ import annotations

import math

import numpy as np

from .windows import strided_view

TILE = 2  # output pixels per tile side
SPAN = 4  # input pixels per tile side: TILE + 3 - 1
POSITIONS = SPAN * SPAN
KERNEL = 3
# G (4x3): the kernel transform U = G g G^T, exact in binary floating point.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# Smallest batch * output pixels worth the 16 products: below it (one image) the ~60 NumPy calls of the
# transforms cost more than im2col saves. Read at call time so the tests can lower it.
MIN_OUTPUT_PIXELS = 1024
CHUNK_VALUES = 1 << 18  # values of a chunk of tiles (1 MiB of float32; see chunk_images)
# B^T's rows as (first, second, operation): row alpha of B^T d is operation(d[first], d[second]).
INPUT_SUMS = ((0, 2, np.subtract), (1, 2, np.add), (2, 1, np.subtract), (1, 3, np.subtract))
# Measured on one core (benchmarks/README.md, 2026-12-07): with fewer than 32 input channels the transforms,
# memory-bound, cost about what the products save (14x14x16 -> 32, forward and backward: im2col 6.5 ms,
# F(4x4) 6.3, F(2x2) 7.1); from 32 channels Winograd wins (14x14x32 -> 64: 20.1, 15.4, 16.4).
MIN_CHANNELS = 32


def applies(kernel_size: tuple[int, int], strides: tuple[int, int], channels: int) -> bool:
    """Whether a convolution of this kind may run as Winograd (this module's F(2x2, 3x3) or ``winograd4``'s
    F(4x4, 3x3), whichever needs fewer products, see ``products``), on batches ``worth_it``."""
    return kernel_size == (KERNEL, KERNEL) and strides == (1, 1) and channels >= MIN_CHANNELS


def products(out_height: int, out_width: int) -> int:
    """Multiply-adds per channel pair and image: 16 per 2x2 tile (im2col: 9 per output pixel)."""
    return POSITIONS * math.prod(tiles(out_height, out_width))


def worth_it(batch: int, out_height: int, out_width: int) -> bool:
    return batch * out_height * out_width >= MIN_OUTPUT_PIXELS


def tile_grid(out_height: int, out_width: int, tile: int) -> tuple[int, int]:
    """Rows and columns of ``tile`` x ``tile`` output tiles covering the output (the last may stick out)."""
    return -(-out_height // tile), -(-out_width // tile)


def tiled_input_shape(batch: int, out_height: int, out_width: int, channels: int, tile: int) -> tuple[int, ...]:
    """The zero-bordered input that ``tile``-pixel output tiles read: every tile's window inside it."""
    rows, columns = tile_grid(out_height, out_width, tile)
    return batch, tile * rows + KERNEL - 1, tile * columns + KERNEL - 1, channels


def tiles(out_height: int, out_width: int) -> tuple[int, int]:
    """Tile rows and columns covering the output (the last ones may stick out by one pixel)."""
    return tile_grid(out_height, out_width, TILE)


def padded_shape(batch: int, out_height: int, out_width: int, channels: int) -> tuple[int, ...]:
    """The zero-bordered input the tiles read: every tile's 4x4 window inside it."""
    return tiled_input_shape(batch, out_height, out_width, channels, TILE)


def chunk_images(batch: int, values_per_image: int) -> int:
    """Images a transform takes at once, so that its temporaries stay in the core's cache (measured: chunks of
    about a million values ran 1.2-2x faster than the whole batch, and than chunks of a few images)."""
    return max(1, min(batch, CHUNK_VALUES // max(values_per_image, 1)))


def input_scratch_size(batch: int, rows: int, columns: int, channels: int) -> int:
    """Values ``transform_input`` needs as scratch: the gathered 4x4 windows and the row sums of one chunk."""
    per_image = POSITIONS * rows * columns * channels
    return 2 * chunk_images(batch, per_image) * per_image


def output_scratch_size(batch: int, rows: int, columns: int, filters: int) -> int:
    """Values ``transform_output`` needs as scratch: its row sums, a partial sum and, for an odd-sized output,
    the whole tiles of one chunk."""
    per_position = rows * columns * filters
    return (2 * SPAN + 1 + TILE * TILE) * chunk_images(batch, POSITIONS * per_position) * per_position


def gradient_scratch_size(batch: int, rows: int, columns: int, filters: int) -> int:
    """Values ``transform_output_gradient`` needs as scratch: the tiles' pixel grids and their row sums."""
    per_position = rows * columns * filters
    return 2 * TILE * TILE * chunk_images(batch, POSITIONS * per_position) * per_position


def working_elements(height: int, width: int, out_height: int, out_width: int, channels: int,
                     filters: int) -> int:
    """Array elements a training forward and backward hold per sample: both padded copies, the tiles and
    products of the forward and of dL/dx (the latter two reuse the former's memory when shapes agree) and the
    transforms' scratch (at most a chunk of ``CHUNK_VALUES`` each, counted here as if per sample)."""
    forward = math.prod(tiles(out_height, out_width)) * POSITIONS
    backward = math.prod(tiles(height, width)) * POSITIONS
    pads = math.prod(padded_shape(1, out_height, out_width, channels)) + math.prod(
        padded_shape(1, height, width, filters))
    scratch = 2 * forward * max(channels, filters) + (2 * SPAN + 1 + TILE * TILE) * forward * max(
        channels, filters) // POSITIONS
    return (pads + forward * (channels + 2 * filters) + scratch
            + (backward * (filters + channels) if backward != forward else 0))


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


def transform_input(padded: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """V = B^T d B for every tile of ``padded`` (``padded_shape``) ``-> out (16, n, rows, columns, C)``.

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]. A chunk of images at a time, the 16
    strided windows are first copied out whole (``scratch``, ``input_scratch_size`` values), so that the
    sums along the rows, then along the columns, all run over contiguous arrays: sums over strided views of
    the padded input ran 2-3x slower than these copies and contiguous sums together.
    """
    n = padded.shape[0]
    rows, columns, channels = out.shape[2:]
    step = chunk_images(n, POSITIONS * rows * columns * channels)
    work = scratch[:2 * POSITIONS * step * rows * columns * channels].reshape(
        2, SPAN, SPAN, step, rows, columns, channels)
    for start in range(0, n, step):
        count = min(step, n - start)
        windows, row_sums = work[0, :, :, :count], work[1, :, :, :count]
        images = padded[start:start + count]
        batch_stride, row_stride, column_stride, channel_stride = images.strides
        strides = (row_stride, column_stride, batch_stride, TILE * row_stride, TILE * column_stride, channel_stride)
        np.copyto(windows, strided_view(images, windows.shape, strides))
        for alpha, (first, second, operation) in enumerate(INPUT_SUMS):
            operation(windows[first], windows[second], out=row_sums[alpha])
        target = out[:, start:start + count].reshape(SPAN, SPAN, *row_sums.shape[2:])
        for beta, (first, second, operation) in enumerate(INPUT_SUMS):  # every row alpha at once
            operation(row_sums[:, first], row_sums[:, second], out=target[:, beta])
    return out


def multiply(v: np.ndarray, u: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The products M[xi] = V[xi] @ U[xi] of every position xi: ``(16, ..., C) x (16, C, F) -> out (16, ..., F)``."""
    positions = len(u)  # 16 here, 36 for F(4x4, 3x3)
    np.matmul(v.reshape(positions, -1, v.shape[-1]), u, out=out.reshape(positions, -1, u.shape[-1]))
    return out


def transform_output(m: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Y = A^T M A for every tile, written into ``out (n, oh, ow, F)``; ``m`` is ``(16, n, rows, columns, F)``.

    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. A chunk of images at a time: the sums along the rows run over
    contiguous arrays, the last sum of each output pixel writes straight into its place in ``out`` (tiles
    sticking out of an odd-sized output go through ``scratch`` and lose their last row or column).
    """
    n, rows, columns, filters = m.shape[1:]
    out_height, out_width = out.shape[1:3]
    whole = (out_height, out_width) == (TILE * rows, TILE * columns)
    step = chunk_images(n, m[:, 0].size)
    size = step * rows * columns * filters
    row_sums = scratch[:2 * SPAN * size].reshape(TILE, SPAN, -1)
    partial = scratch[2 * SPAN * size:(2 * SPAN + 1) * size]
    tiled = scratch[(2 * SPAN + 1) * size:(2 * SPAN + 1 + TILE * TILE) * size]
    for start in range(0, n, step):
        count = min(step, n - start)
        chunk = m[:, start:start + count].reshape(SPAN, SPAN, -1)
        used = chunk.shape[-1]
        sums, part = row_sums[:, :, :used], partial[:used]
        np.add(chunk[0], chunk[1], out=sums[0])
        sums[0] += chunk[2]
        np.subtract(chunk[1], chunk[2], out=sums[1])
        sums[1] -= chunk[3]
        grid = (out[start:start + count] if whole else tiled[:TILE * TILE * used]).reshape(
            count, rows, TILE, columns, TILE, filters)
        shape = (count, rows, columns, filters)
        for a in range(TILE):
            s = sums[a]
            np.add(s[0], s[1], out=part)
            np.add(part.reshape(shape), s[2].reshape(shape), out=grid[:, :, a, :, 0])
            np.subtract(s[1], s[2], out=part)
            np.subtract(part.reshape(shape), s[3].reshape(shape), out=grid[:, :, a, :, 1])
        if not whole:
            out[start:start + count] = grid.reshape(count, TILE * rows, TILE * columns, filters)[
                :, :out_height, :out_width]
    return out


def transform_output_gradient(grad: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """dM = A dY A^T for every tile (the adjoint of ``transform_output``): dY ``(n, 2 rows, 2 columns, F)``,
    zero where the tiles stick out of an odd-sized output, ``-> out (16, n, rows, columns, F)``.

    A = [[1, 0], [1, 1], [1, -1], [0, -1]]. A chunk of images at a time, the tiles' four pixel grids are copied
    out whole (``scratch``, ``gradient_scratch_size`` values) so that every sum runs over contiguous arrays;
    each of the 16 positions is then one copy, sum, difference or negation written straight into ``out``.
    """
    n, rows, columns, filters = out.shape[1:]
    grid = grad.reshape(n, rows, TILE, columns, TILE, filters)
    step = chunk_images(n, out[:, 0].size)
    work = scratch[:2 * TILE * TILE * step * rows * columns * filters].reshape(
        2, TILE, TILE, step, rows, columns, filters)
    for start in range(0, n, step):
        count = min(step, n - start)
        pixels, sums = work[0, :, :, :count], work[1, :, :, :count]
        np.copyto(pixels, grid[start:start + count].transpose(2, 4, 0, 1, 3, 5))
        top, bottom = pixels
        np.add(top, bottom, out=sums[0])
        np.subtract(top, bottom, out=sums[1])
        target = out[:, start:start + count]
        for alpha, (left, right) in enumerate((top, sums[0], sums[1])):
            first = SPAN * alpha
            target[first] = left
            np.add(left, right, out=target[first + 1])
            np.subtract(left, right, out=target[first + 2])
            np.negative(right, out=target[first + 3])
        left, right = bottom  # the last row of A: minus the bottom row
        np.negative(left, out=target[12])
        np.subtract(target[12], right, out=target[13])
        np.subtract(right, left, out=target[14])
        target[15] = right
    return out
