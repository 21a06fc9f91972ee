"""Pytest helpers for detector authors: a cached small dataset and a view to score on.

Installed as a pytest plugin (entry point ``pytest11``), so in your own test suite::

    def test_my_detector_speed(benchmark, breachbench_dataset):
        from breachbench import Dataset
        ds = Dataset.open(breachbench_dataset)
        det = MyDetector().fit(ds.view(ds.warmup[-1]))
        day = ds.scored[0]
        benchmark(det.score, ds.view(day, day))

The dataset (``configs/tiny.toml``'s world: 4,000 customers, 28 days, one forged-token
incident) is generated once and cached by config hash under ``$BREACHBENCH_CACHE`` or pytest's
cache directory, so later runs reuse it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from simulator import layout
from simulator.config import SimConfig
from simulator.engine import config_hash, generate

#: The small world of the fixture (the same as configs/tiny.toml).
SMALL = {
    "seed": 7,
    "world": {"customers": 4000, "employees": 200},
    "time": {"start": "2025-04-01", "end": "2025-04-29", "warmup_days": 7},
    "scenarios": [{"id": "coupang-forged-token-v3", "knobs": {"start_offset": 2, "probe_days": 4, "daily_share": 0.0072}}],
}


def cached_dataset(cfg: SimConfig | dict, cache_dir: str | Path) -> Path:
    """Generate ``cfg`` into ``cache_dir/<config hash>`` unless it is already there; return the path."""
    sim = cfg if isinstance(cfg, SimConfig) else SimConfig.model_validate(cfg)
    path = Path(cache_dir) / config_hash(sim)[:16]
    if not (path / layout.MANIFEST).is_file():
        generate(sim, path, workers=1, force=True)
    return path


def _cache_dir(config: pytest.Config) -> Path:
    env = os.environ.get("BREACHBENCH_CACHE")
    if env:
        return Path(env)
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if cache is not None:
        return Path(cache.mkdir("breachbench-datasets"))
    return Path(tempfile.gettempdir()) / "breachbench-datasets"


@pytest.fixture(scope="session")
def breachbench_dataset(pytestconfig: pytest.Config) -> Path:
    """Path of a cached small BreachBench dataset (see the module docstring)."""
    return cached_dataset(SMALL, _cache_dir(pytestconfig))
