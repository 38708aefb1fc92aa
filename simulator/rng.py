"""Named random streams from one root seed.

Every component that draws random numbers asks for its own stream by name
(``streams.stream("rank 3 jitter")``); the stream depends only on the root seed, the
replication index and the name, never on the order in which components ask or on the
global ``random`` state. Same scenario + seed -> the same draws -> the same result.
"""

from __future__ import annotations

import zlib

import numpy as np


class RandomStreams:
    def __init__(self, seed: int, replication: int = 0):
        self.seed = seed
        self.replication = replication

    def stream(self, name: str) -> np.random.Generator:
        key = zlib.crc32(name.encode())
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.replication, key]))
