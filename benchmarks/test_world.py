"""World-table throughput (pytest-benchmark), with a per-record Faker loop as the yardstick.

Everything is measured in the same run so the ratios are meaningful on a noisy machine:
``extra_info`` carries rows per second and, for the customer table, the speed-up over a
per-record Faker loop (ko_KR name, e-mail, phone, address) on a 20k sample.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from breachbench.config import load_config
from simulator import engine, layout
from simulator.config import SimConfig
from simulator.world import block_count

ROOT = Path(__file__).resolve().parents[1]
FAKER_SAMPLE = 20_000
_faker_rate: dict[str, float] = {}


def _faker_loop_rate() -> float:
    """Customers per second of a per-record Faker loop (the naive way), measured once."""
    if "ko_KR" not in _faker_rate:
        from faker import Faker

        fake = Faker("ko_KR")
        fake.seed_instance(1)
        t = time.perf_counter()
        rows = [(fake.name(), fake.email(), fake.phone_number(), fake.address()) for _ in range(FAKER_SAMPLE)]
        _faker_rate["ko_KR"] = len(rows) / (time.perf_counter() - t)
    return _faker_rate["ko_KR"]


def _customers_only(cfg: SimConfig, root: Path, workers: int) -> None:
    """The customer table alone, Parquet included, block by block on the executor."""
    with engine.make_executor(workers) as ex:
        list(ex.map(engine.customers_table_shard, [engine.WorldTask(cfg, root, [b]) for b in range(block_count(cfg))]))


def test_faker_loop_reference(benchmark) -> None:
    """The yardstick: a per-record Faker loop over a 20k sample (ko_KR)."""
    from faker import Faker

    fake = Faker("ko_KR")
    fake.seed_instance(1)
    benchmark.pedantic(
        lambda: [(fake.name(), fake.email(), fake.phone_number(), fake.address()) for _ in range(FAKER_SAMPLE)],
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(rows=FAKER_SAMPLE, rows_per_s=FAKER_SAMPLE / benchmark.stats.stats.mean)


def test_customer_table(benchmark, tmp_path: Path) -> None:
    """4M customers with --workers 2; reports customers/s and the ratio to the Faker loop."""
    cfg = load_config(ROOT / "configs" / "tiny.toml", ["world.customers=4000000", "world.block_size=250000"]).sim()
    root = tmp_path / "c"

    def setup() -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()

    benchmark.pedantic(lambda: _customers_only(cfg, root, 2), setup=setup, rounds=3, iterations=1)
    rate = cfg.world.customers / benchmark.stats.stats.mean
    faker = _faker_loop_rate()
    benchmark.extra_info.update(
        rows=cfg.world.customers,
        rows_per_s=rate,
        workers=2,
        faker_loop_rows_per_s=faker,
        speedup_vs_faker_loop=rate / faker,
        bytes=sum(p.stat().st_size for p in layout.world_glob(root, "customers")),
    )


def test_whole_world(benchmark, tmp_path: Path) -> None:
    """Every world table of a 2M-customer world (--only world --workers 2), Parquet included."""
    cfg = load_config(
        ROOT / "configs" / "tiny.toml", ["world.customers=2000000", "world.block_size=250000", "world.employees=12000"]
    ).sim()
    out = tmp_path / "w"
    benchmark.pedantic(
        lambda: engine.generate(cfg, out, workers=2, only="world", force=True),
        setup=lambda: shutil.rmtree(out, ignore_errors=True),
        rounds=3,
        iterations=1,
    )
    files = json.loads((out / "manifest.json").read_text())["files"]
    rows = sum(f["rows"] for f in files)
    per_table: dict[str, int] = {}
    for f in files:
        name = f["path"].split("/")[1].rsplit("-", 1)[0]
        per_table[name] = per_table.get(name, 0) + f["rows"]
    benchmark.extra_info.update(
        rows=rows, rows_per_s=rows / benchmark.stats.stats.mean, workers=2, bytes=sum(f["bytes"] for f in files), tables=per_table
    )


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)
