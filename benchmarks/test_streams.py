"""All log streams together, Parquet included (``--workers 2``), against a naive yardstick:
uniform numpy columns of the same schema and row counts written to the same files. The ratio
goes to ``extra_info`` (target: at least half the yardstick's speed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.conftest import bench_config
from simulator import engine, schema
from simulator.scenarios import load as load_scenario

_rates: dict[str, float] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A 40k-customer world (4 blocks) and its log tasks over 14 days."""
    cfg = bench_config("world.customers=40000", "world.block_size=10000", "world.employees=1000", "time.end=2025-04-15").sim()
    root = tmp_path_factory.mktemp("streams")
    groups = engine.shards(cfg, None)
    for task in [engine.WorldTask(cfg, root, staff=True), *(engine.WorldTask(cfg, root, g) for g in groups)]:
        engine.run_world_task(task)
    scen = [engine.ScenarioEntry(s, load_scenario(s.id), load_scenario(s.id).Knobs(**s.knobs)) for s in cfg.scenarios]
    tasks = engine.log_tasks(cfg, root, groups, scen)
    yield cfg, root, tasks
    shutil.rmtree(root, ignore_errors=True)


def _naive_task(args: tuple[Path, str, int, int, int]) -> int:
    """Uniform random columns of a stream's schema, ``rows`` of them, written to Parquet."""
    root, stream, day, block, rows = args
    r = np.random.default_rng([day, block, schema.STREAM_CODES[stream]])
    cols = {}
    for name, dtype in schema.LOG_STREAMS[stream].items():
        if dtype == pl.String:
            cols[name] = pl.Series(r.integers(0, 1 << 40, rows)).cast(pl.String)
        elif dtype == schema.TS:
            cols[name] = (
                pl.Series(np.sort(r.integers(1_743_400_000_000_000, 1_743_486_400_000_000, rows)))
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
            )
        else:
            cols[name] = pl.Series(r.integers(0, 1 << 30 if dtype in (pl.Int64, pl.Int32) else 1 << 14, rows)).cast(dtype)
    path = root / stream / f"{day:04d}-{block:05d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(cols).write_parquet(path, compression="zstd")
    return rows


def test_all_streams(benchmark, world) -> None:
    """Every stream of every (day, shard), scenario and hard negatives included, 2 workers."""
    cfg, root, tasks = world

    def run() -> list:
        with engine.make_executor(2) as ex:
            return [f for out in ex.map(engine.run_log_task, tasks) for f in out.files]

    files = benchmark.pedantic(run, setup=lambda: shutil.rmtree(root / "logs", ignore_errors=True), rounds=2, iterations=1)
    by_stream: dict[str, int] = {}
    for f in files:
        by_stream[f["path"].split("/")[1]] = by_stream.get(f["path"].split("/")[1], 0) + f["rows"]
    rows = sum(by_stream.values())
    _rates["real"] = rows / benchmark.stats.stats.min
    (root / "counts.json").write_text(__import__("json").dumps([[f["path"], f["rows"]] for f in files]))
    benchmark.extra_info.update(rows=rows, rows_by_stream=by_stream, events_per_s=_rates["real"], workers=2)


def test_naive_reference(benchmark, world) -> None:
    """The yardstick: the same row counts per file as uniform numpy columns, 2 workers."""
    import json

    _, root, _ = world
    counts = json.loads((root / "counts.json").read_text())
    out = root / "naive"
    tasks = []
    for path, rows in counts:
        parts = path.split("/")
        tasks.append((out, parts[1], hash(parts[2]) % 10_000, int(parts[3].split("-")[1].split(".")[0]), rows))

    def run() -> int:
        with engine.make_executor(2) as ex:
            return sum(ex.map(_naive_task, tasks))

    rows = benchmark.pedantic(run, setup=lambda: shutil.rmtree(out, ignore_errors=True), rounds=2, iterations=1)
    naive = rows / benchmark.stats.stats.min
    benchmark.extra_info.update(
        rows=rows, events_per_s=naive, workers=2, real_over_naive=_rates.get("real", float("nan")) / naive
    )
