"""Random streams derived from one root seed.

Every stream is ``SeedSequence(root, spawn_key=(stream_code, *key))`` where ``key`` is made of
entity-ID blocks and day indices, never of shard or worker numbers: the same block gives the
same numbers whichever process draws them and however the work is split.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream_code(name: str) -> int:
    """Stable integer code of a named stream (CRC-32 of its name)."""
    return zlib.crc32(name.encode("utf-8"))


def rng(root: int, stream: str, *key: int) -> np.random.Generator:
    """A generator for ``stream`` keyed by integers (entity block, day index, ...)."""
    seq = np.random.SeedSequence(int(root), spawn_key=(stream_code(stream), *(int(k) for k in key)))
    return np.random.Generator(np.random.PCG64(seq))


def seed_int(root: int, stream: str, *key: int) -> int:
    """A 63-bit integer seed for libraries that take one (Faker), derived like :func:`rng`."""
    seq = np.random.SeedSequence(int(root), spawn_key=(stream_code(stream), *(int(k) for k in key)))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def hash_u64(root: int, stream: str, values: np.ndarray) -> np.ndarray:
    """Deterministic per-value 64-bit hash (SplitMix64 finaliser) salted by root and stream.

    Used for stable per-entity attributes (an account's home IP) that must not depend on which
    block or day draws them.
    """
    salt = np.uint64(seed_int(root, stream))
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + salt + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def hash_unit(root: int, stream: str, values: np.ndarray) -> np.ndarray:
    """Per-value uniform floats in [0, 1) from :func:`hash_u64`."""
    return (hash_u64(root, stream, values) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
