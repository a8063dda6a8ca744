"""Conv2D's Winograd path: forward and backward a chunk of images at a time, through one of the Winograd
modules (``winograd``: F(2x2, 3x3), ``winograd4``: F(4x4, 3x3)), which share one set of functions.

The chunk's transformed tiles and products stay in the core's cache between the transforms and the products
(``_winograd_chunk``); training keeps only the whole batch's transformed input tiles, for dL/dkernel.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np


class WinogradSteps:
    """Mixed into Conv2D, whose ``geometry``, ``filters``, ``params``, ``grads`` and ``_buffers`` it reads."""

    _tiles: np.ndarray | None  # the transformed input tiles of a Winograd training forward (set by Conv2D)
    _winograd: ModuleType | None  # ... and the module that made them

    def _winograd_forward(self, x: np.ndarray, training: bool, algorithm: ModuleType) -> np.ndarray:
        """z = conv(x, kernel) through ``algorithm``, a chunk of images at a time (``_winograd_chunk``); keeps
        the transformed tiles of the whole batch for backward if training."""
        g = self.geometry
        n = len(x)
        suffix = "" if training else "_inference"
        rows, columns = algorithm.tiles(g.out_height, g.out_width)
        step = self._winograd_chunk(n, algorithm)
        padded = self._buffers.get("winograd_padded" + suffix,
                                   algorithm.padded_shape(n, g.out_height, g.out_width, g.channels), x.dtype,
                                   fill=0)  # the border is written once, as zeros, and never again
        padded[:, g.top:g.top + g.height, g.left:g.left + g.width] = x
        tiles = self._buffers.get("winograd_tiles" + suffix, (algorithm.POSITIONS, n if training else step, rows,
                                                              columns, g.channels), x.dtype)
        products = self._buffers.get("winograd_products" + suffix,
                                     (algorithm.POSITIONS, step, rows, columns, self.filters), x.dtype)
        scratch = self._winograd_scratch(step, suffix, x.dtype, algorithm)
        u = algorithm.transform_kernel(self.params["kernel"])
        z = np.empty((n, g.out_height, g.out_width, self.filters), x.dtype)
        for start in range(0, n, step):
            stop = min(n, start + step)
            chunk_tiles = tiles[:, start:stop] if training else tiles[:, :stop - start]
            algorithm.transform_input(padded[start:stop], chunk_tiles, scratch)
            algorithm.multiply(chunk_tiles, u, products[:, :stop - start])
            algorithm.transform_output(products[:, :stop - start], z[start:stop], scratch)
        self._tiles = tiles if training else None
        self._winograd = algorithm if training else None
        return z.reshape(-1, self.filters)

    def _winograd_chunk(self, batch: int, algorithm: ModuleType) -> int:
        """Images the Winograd forward and backward take at once: with the tiles and products of a chunk in the
        core's cache, the products run 1.3-1.6x faster than over the whole batch's (measured on one core:
        70 -> 93-113 GFLOP/s), and the transforms write and read no more than the cache holds."""
        g = self.geometry
        widest = max(g.channels, self.filters)
        values = algorithm.POSITIONS * max(math.prod(algorithm.tiles(g.out_height, g.out_width)),
                                          math.prod(algorithm.tiles(g.height, g.width))) * widest
        return algorithm.chunk_images(batch, values)

    def _winograd_scratch(self, batch: int, suffix: str, dtype: np.dtype, algorithm: ModuleType) -> np.ndarray:
        """One scratch array for the transforms of this layer's forward and backward, the largest they need."""
        g = self.geometry
        out_tiles, in_tiles = algorithm.tiles(g.out_height, g.out_width), algorithm.tiles(g.height, g.width)
        size = max(algorithm.input_scratch_size(batch, *out_tiles, g.channels),
                   algorithm.output_scratch_size(batch, *out_tiles, self.filters),
                   algorithm.gradient_scratch_size(batch, *out_tiles, self.filters),
                   algorithm.input_scratch_size(batch, *in_tiles, self.filters),
                   algorithm.output_scratch_size(batch, *in_tiles, g.channels))
        return self._buffers.get("winograd_scratch" + suffix, (size,), dtype)

    def _winograd_backward(self, grad_z: np.ndarray, input_gradient: bool) -> np.ndarray | None:
        """dL/dkernel from the kept tiles and dL/dx as a Winograd correlation of dL/dz with the turned kernel,
        a chunk of images at a time, the chunk's transformed gradients and products in reused buffers."""
        g = self.geometry
        n = len(grad_z)
        tiles, self._tiles = self._tiles, None
        algorithm, self._winograd = self._winograd, None
        rows, columns = algorithm.tiles(g.out_height, g.out_width)
        grad_rows, grad_columns = algorithm.tiles(g.height, g.width)
        step = self._winograd_chunk(n, algorithm)
        tiled = grad_z
        if (algorithm.TILE * rows, algorithm.TILE * columns) != (g.out_height, g.out_width):
            tiled = self._buffers.get("winograd_tiled_gradient", (n, algorithm.TILE * rows, algorithm.TILE * columns,
                                                                   self.filters), grad_z.dtype, fill=0)
            tiled[:, :g.out_height, :g.out_width] = grad_z  # zeros where tiles stick out of an odd-sized output
        # dL/dx[y, x] = sum over the window of dL/dz[y + top - i, x + left - j] kernel[i, j]^T: a 'valid'
        # correlation of dL/dz padded by (2 - top, 2 - left) with the kernel turned by 180 degrees.
        padded = self._buffers.get("winograd_padded_gradient",
                                   algorithm.padded_shape(n, g.height, g.width, self.filters), grad_z.dtype, fill=0)
        top, left = algorithm.KERNEL - 1 - g.top, algorithm.KERNEL - 1 - g.left
        if input_gradient:
            padded[:, top:top + g.out_height, left:left + g.out_width] = grad_z
        grad_tiles = self._buffers.get("winograd_products", (algorithm.POSITIONS, step, rows, columns, self.filters),
                                       grad_z.dtype)
        input_tiles = self._buffers.get("winograd_input_gradient_tiles",
                                        (algorithm.POSITIONS, step, grad_rows, grad_columns, self.filters),
                                        grad_z.dtype)
        input_products = self._buffers.get("winograd_gradient_products",
                                           (algorithm.POSITIONS, step, grad_rows, grad_columns, g.channels),
                                           grad_z.dtype)
        scratch = self._winograd_scratch(step, "", grad_z.dtype, algorithm)
        grad_u = np.zeros((algorithm.POSITIONS, g.channels, self.filters), grad_z.dtype)
        part = np.empty_like(grad_u)
        turned = algorithm.transform_kernel(algorithm.turned_kernel(self.params["kernel"]))
        grad_x = np.empty((n, g.height, g.width, g.channels), grad_z.dtype) if input_gradient else None
        for start in range(0, n, step):
            stop = min(n, start + step)
            count = stop - start
            algorithm.transform_output_gradient(tiled[start:stop], grad_tiles[:, :count], scratch)
            np.matmul(tiles[:, start:stop].reshape(algorithm.POSITIONS, -1, g.channels).transpose(0, 2, 1),
                      grad_tiles[:, :count].reshape(algorithm.POSITIONS, -1, self.filters), out=part)
            grad_u += part
            if input_gradient:
                algorithm.transform_input(padded[start:stop], input_tiles[:, :count], scratch)
                algorithm.multiply(input_tiles[:, :count], turned, input_products[:, :count])
                algorithm.transform_output(input_products[:, :count], grad_x[start:stop], scratch)
        algorithm.kernel_gradient(grad_u, self.grads["kernel"])
        return grad_x
