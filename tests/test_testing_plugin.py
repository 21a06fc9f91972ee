"""The pytest plugin for detector authors: a cached small dataset."""

from __future__ import annotations

from pathlib import Path

from breachbench.config import load_config
from breachbench.dataset import Dataset
from breachbench.testing import SMALL, cached_dataset
from simulator.config import SimConfig

ROOT = Path(__file__).resolve().parents[1]


def test_small_world_is_the_tiny_config() -> None:
    assert SimConfig.model_validate(SMALL) == load_config(ROOT / "configs" / "tiny.toml").sim()


def test_fixture_gives_a_scoreable_dataset(breachbench_dataset: Path) -> None:
    ds = Dataset.open(breachbench_dataset)
    assert ds.scored and ds.truth("incidents").height == 1


def test_cache_is_reused(tmp_path: Path) -> None:
    cfg = SimConfig.model_validate(
        {
            **SMALL,
            "world": {"customers": 300, "employees": 60},
            "time": {"start": "2025-04-01", "end": "2025-04-15", "warmup_days": 3},
        }
    )
    first = cached_dataset(cfg, tmp_path)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert cached_dataset(cfg, tmp_path) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # not generated again
    other = cached_dataset(cfg.model_copy(update={"seed": 8}), tmp_path)
    assert other != first
