"""Seeded pseudo-random permutations of [0, n) evaluated on demand, in O(1) memory whatever n.

A shuffled epoch over 50 million samples would be a 400 MB ``rng.permutation``; here the i-th element of the
shuffled order is computed when it is needed, by a keyed bijection: an alternating Feistel network on the bit
length of n (as in FFX, Bellare, Rogaway & Spies 2010), restricted to [0, n) by cycle walking (re-encrypt until
the value falls inside [0, n); the domain is less than 2n, so on average fewer than 2 passes). Each round xors
one part of the value with a keyed hash of the other, which can be undone, so the whole is a bijection whatever
the hash; the hash is a 64-bit multiply-xorshift mix (after splitmix64).

Every operation is vectorised over an array of positions, and the domain size and keys may differ from element
to element, so the rows of many classes (each with its own size and key) are permuted in one call.
"""

from __future__ import annotations

import numpy as np

ROUNDS = 4  # Feistel rounds: 4 make a pseudo-random permutation of a random round function (Luby & Rackoff)
WORD_BITS = np.uint64(64)
_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))  # splitmix64's finalizer
_HALF_WORD = np.uint64(32)
_ONE = np.uint64(1)


def bit_length(size: np.ndarray) -> np.ndarray:
    """Bits of the domain [0, 2**b) covering [0, size) for sizes below 2**53, at least 2 (both parts non-empty)."""
    largest = np.maximum(np.asarray(size, dtype=np.float64), 4.0) - 1.0
    return np.frexp(largest)[1].astype(np.uint64)  # largest = m * 2**e with m in [0.5, 1): e bits


def _hash(value: np.ndarray, key: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """A keyed hash of ``value`` to ``bits`` bits: the top bits of a multiply-xorshift mix."""
    mixed = (value ^ key) * _MULTIPLIERS[0]
    mixed ^= mixed >> _HALF_WORD
    mixed *= _MULTIPLIERS[1]
    return mixed >> (WORD_BITS - bits)


def _encrypt(value: np.ndarray, bits: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """One pass over [0, 2**bits): the value is split into a high part (``bits // 2`` bits) and a low part, and
    each round xors one part with the hash of the other. ``keys``: ROUNDS keys, or ROUNDS rows of one per element.
    """
    low_bits = bits - bits // np.uint64(2)
    high_bits = bits - low_bits
    high, low = value >> low_bits, value & ((_ONE << low_bits) - _ONE)
    for round_number, key in enumerate(keys):
        if round_number % 2:
            low = low ^ _hash(high, key, low_bits)
        else:
            high = high ^ _hash(low, key, high_bits)
    return (high << low_bits) | low


def permute(positions: np.ndarray, sizes: np.ndarray | int, keys: np.ndarray) -> np.ndarray:
    """The images of ``positions`` (each in [0, its size)) under the permutations of [0, size) keyed by ``keys``.

    ``sizes`` is one size or one per position; ``keys`` is ``(ROUNDS,)`` uint64 or ``(ROUNDS, len(positions))``.
    Returns int64 values, each in [0, its size).
    """
    positions = np.asarray(positions, dtype=np.uint64)
    sizes = np.asarray(sizes, dtype=np.uint64)
    keys = np.asarray(keys, dtype=np.uint64)
    shared_keys, shared_size = keys.ndim == 1, sizes.ndim == 0
    bits = bit_length(sizes)
    result = _encrypt(positions, bits, keys)
    outside = np.flatnonzero(result >= sizes)
    while outside.size:  # cycle walking: the orbit of a position inside the domain comes back inside
        walked = _encrypt(result[outside], bits if shared_size else bits[outside],
                          keys if shared_keys else keys[:, outside])
        result[outside] = walked
        outside = outside[walked >= (sizes if shared_size else sizes[outside])]
    return result.astype(np.int64)


def draw_keys(rng: np.random.Generator) -> np.ndarray:
    """A fresh row of ROUNDS round keys from ``rng``."""
    return rng.integers(0, 2**64, size=ROUNDS, dtype=np.uint64, endpoint=False)


class RandomPermutation:
    """A shuffled order of ``range(n)``: ``order[i]``, ``order[start:stop]`` or ``order[array]`` computed when
    asked, never stored. The same keys always give the same order.

    >>> order = RandomPermutation(10, np.random.default_rng(0))
    >>> sorted(order[0:10].tolist()) == list(range(10))
    True
    """

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = int(n)
        self.keys = draw_keys(rng)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, where: slice | np.ndarray | int) -> np.ndarray:
        if isinstance(where, slice):
            positions = np.arange(*where.indices(self.n), dtype=np.uint64)
        else:
            positions = np.asarray(where)
            if positions.size and (positions.min() < 0 or positions.max() >= self.n):
                raise IndexError(f"positions must be in [0, {self.n})")
        return permute(positions, self.n, self.keys)
