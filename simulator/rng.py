"""Named random streams from one root seed.

Every component that draws random numbers asks for its own stream by name
(``streams.stream("rank 3 jitter")``); the stream depends only on the root seed, the
replication index and the name, never on the order in which components ask or on the
global ``random`` state. Same scenario + seed -> the same draws -> the same result.

:meth:`RandomStreams.streams` makes many streams at once (one per rank at thousands of
GPUs): the same generators as :meth:`~RandomStreams.stream` name by name, with NumPy's
seed hashing (:class:`numpy.random.SeedSequence`) done for all names together.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.random.bit_generator import ISeedSequence

# numpy.random.SeedSequence's constants (O'Neill's seed_seq; bit_generator.pyx).
_POOL_SIZE = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_MASK32 = 0xFFFFFFFF
_XSHIFT = np.uint32(16)

U32 = np.ndarray[Any, np.dtype[np.uint32]]


class RandomStreams:
    def __init__(self, seed: int, replication: int = 0):
        self.seed = seed
        self.replication = replication

    def stream(self, name: str) -> np.random.Generator:
        key = zlib.crc32(name.encode())
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.replication, key]))

    def streams(self, names: Sequence[str]) -> list[np.random.Generator]:
        """``[self.stream(name) for name in names]``, seeded together (a tenth of the time)."""
        seed, replication = _words(self.seed), _words(self.replication)
        if seed is None or replication is None or len(names) < 2:
            return [self.stream(name) for name in names]
        prefix = seed + replication
        keys = np.fromiter((zlib.crc32(name.encode()) for name in names), dtype=np.uint32, count=len(names))
        entropy = [np.full(len(names), w, dtype=np.uint32) for w in prefix] + [keys]
        state = _generate_state(_pool(entropy))
        # PCG64 takes any ISeedSequence (NumPy's stubs name only SeedSequence).
        return [np.random.Generator(np.random.PCG64(_Seeded(row))) for row in state]  # type: ignore[arg-type]


def _words(n: object) -> list[int] | None:
    """The 32-bit words SeedSequence makes of a non-negative int, least significant
    first (None: anything else, which goes through SeedSequence itself)."""
    if type(n) is not int or n < 0:
        return None
    words = [n & _MASK32]
    n >>= 32
    while n:
        words.append(n & _MASK32)
        n >>= 32
    return words


def _hashmix(value: U32, hash_const: int) -> tuple[U32, int]:
    hash_const_next = (hash_const * _MULT_A) & _MASK32
    value = (value ^ np.uint32(hash_const)) * np.uint32(hash_const_next)
    return value ^ (value >> _XSHIFT), hash_const_next


def _mix(x: U32, y: U32) -> U32:
    result: U32 = x * np.uint32(_MIX_MULT_L) - y * np.uint32(_MIX_MULT_R)
    return result ^ (result >> _XSHIFT)


def _pool(entropy: list[U32]) -> list[U32]:
    """SeedSequence's entropy pool (``mix_entropy``), one column per stream."""
    hash_const = _INIT_A
    mixer = []
    for i in range(_POOL_SIZE):
        value, hash_const = _hashmix(entropy[i] if i < len(entropy) else np.zeros_like(entropy[0]), hash_const)
        mixer.append(value)
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                value, hash_const = _hashmix(mixer[i_src], hash_const)
                mixer[i_dst] = _mix(mixer[i_dst], value)
    for i_src in range(_POOL_SIZE, len(entropy)):
        for i_dst in range(_POOL_SIZE):
            value, hash_const = _hashmix(entropy[i_src], hash_const)
            mixer[i_dst] = _mix(mixer[i_dst], value)
    return mixer


def _generate_state(pool: list[U32]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """SeedSequence's ``generate_state(4, np.uint64)`` (what PCG64 seeds from), one row per stream."""
    hash_const = _INIT_B
    words = []
    for i in range(8):
        value = pool[i % _POOL_SIZE] ^ np.uint32(hash_const)
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = value * np.uint32(hash_const)
        words.append(value ^ (value >> _XSHIFT))
    low, high = np.stack(words[0::2], axis=1), np.stack(words[1::2], axis=1)
    return low.astype(np.uint64) | (high.astype(np.uint64) << np.uint64(32))


class _Seeded(ISeedSequence):
    """A seed sequence whose state is already generated (by :func:`_generate_state`)."""

    def __init__(self, state: np.ndarray[Any, np.dtype[np.uint64]]):
        self.state = state

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray[Any, Any]:
        if n_words != 4 or np.dtype(dtype) != np.uint64:  # only PCG64's request was generated
            raise ValueError("this seed sequence only seeds PCG64")
        return self.state
