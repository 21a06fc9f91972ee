"""Shared benchmark fixtures: cached datasets and a peak-memory sampler.

Datasets are generated once and cached under ``$BREACHBENCH_CACHE`` (default
``.benchmarks/cache``), keyed by config hash, so macro benchmarks time the stage alone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from breachbench.config import BenchConfig, load_config
from breachbench.testing import cached_dataset

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("BREACHBENCH_CACHE", ROOT / ".benchmarks" / "cache"))


def bench_config(*overrides: str) -> BenchConfig:
    """configs/tiny.toml with overrides."""
    return load_config(ROOT / "configs" / "tiny.toml", list(overrides))


@pytest.fixture(scope="session")
def medium_dataset() -> Path:
    """20,000 customers over 28 days (about 4M log rows), cached."""
    return cached_dataset(bench_config("world.customers=20000", "world.block_size=10000").sim(), CACHE)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """Sample this process's RSS every 5 ms; yields a dict that gets ``peak_rss_bytes`` (above the start)."""
    out: dict[str, int] = {}
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        out["peak_rss_bytes"] = max(peak[0], _rss()) - base
