"""Generation throughput (pytest-benchmark): rows per second written, Parquet included.

Run with ``make perf``. Numbers from another day or machine are not comparable; compare runs
side by side.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from breachbench.config import load_config
from simulator.engine import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_generate_dataset(benchmark, tmp_path: Path, workers: int) -> None:  # benchmark: pytest-benchmark's fixture
    """The whole dataset (world, logs, truth) of a 20k-customer, 28-day world."""
    cfg = load_config(ROOT / "configs" / "tiny.toml", ["world.customers=20000", "world.block_size=10000"]).sim()
    out = tmp_path / "ds"

    def once() -> None:
        generate(cfg, out, workers=workers, force=True)

    benchmark.pedantic(once, setup=lambda: shutil.rmtree(out, ignore_errors=True), rounds=3, iterations=1)
    manifest = json.loads((out / "manifest.json").read_text())
    rows = sum(f["rows"] for f in manifest["files"])
    size = sum(f["bytes"] for f in manifest["files"])
    benchmark.extra_info.update(
        rows=rows,
        bytes=size,
        rows_per_s=rows / benchmark.stats.stats.mean,
        workers=workers,
    )
