"""A model's random streams (its generator and its seeded layers' own ones), and how a copy of the model that
computes another part of the same step gets streams of its own: a data-parallel process or a replica of a
threaded step would otherwise draw the same Dropout masks and augmentations as every other part."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .network import Network

SEED_BITS = 63  # seeds drawn for SeedSequence: any non-negative int64


def generators(model: Network) -> list[np.random.Generator]:
    """The model's generator, then every distinct generator a layer draws from by itself (a seeded layer's)."""
    found = [model.rng]
    for layer in model.layers:
        generator = layer.own_generator() if hasattr(layer, "own_generator") else None
        if generator is not None and all(generator is not other for other in found):
            found.append(generator)
    return found


def draw_seed(generator: np.random.Generator) -> int:
    return int(generator.integers(2**SEED_BITS))


def restart(generator: np.random.Generator, seed: int, rank: int) -> None:
    """Put ``generator`` on the stream of ``seed`` and ``rank``: one stream per rank from the same seed."""
    bits = generator.bit_generator
    bits.state = type(bits)(np.random.SeedSequence([seed, rank])).state


def restart_all(model: Network, seeds: list[int], rank: int) -> None:
    """Put each of ``model``'s ``generators`` on the stream of its seed (in ``seeds``, in that order) and ``rank``."""
    for generator, seed in zip(generators(model), seeds, strict=True):
        restart(generator, seed, rank)


def part_seeds(model: Network, parts: int) -> list[list[int]]:
    """Seeds for the copies computing parts 1 to ``parts - 1`` of a split step: one per stream of ``model``,
    drawn from its generator rank by rank (threads and processes draw the same, so they train alike)."""
    streams = len(generators(model))
    return [[draw_seed(model.rng) for _ in range(streams)] for _ in range(1, parts)]
