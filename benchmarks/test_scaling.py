"""Scaling: generation and feature extraction at N, 2N and 4N customers; the fitted cost
exponent (slope of log time on log size; 1 is linear) goes to ``extra_info``.

Fixed costs of a run (process start, manifest, per-day staff files) pull the generation
exponent a little below 1 at these sizes (measured 0.88 here); above 1 would mean
superlinear cost.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.conftest import bench_config
from breachbench.dataset import Dataset
from detectors.features import gateway_features
from simulator.config import SimConfig
from simulator.engine import generate

SIZES = (20_000, 40_000, 80_000)


def _cfg(n: int) -> SimConfig:
    """The whole company scales: customers and staff (one employee per 50 customers)."""
    return bench_config(
        f"world.customers={n}", f"world.employees={n // 50}", "world.block_size=10000", "time.end=2025-04-15"
    ).sim()


def _exponent(sizes: tuple[int, ...], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def _best(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def test_generation_scaling(benchmark, tmp_path: Path) -> None:
    """Whole dataset at N, 2N, 4N customers (14 days, one worker); benchmark times 4N."""

    def gen(n: int) -> None:
        generate(_cfg(n), tmp_path / f"d{n}", force=True)

    gen(SIZES[0])  # warm the Faker pools and imports so that they do not bias the smallest size
    times = [_best(lambda n=n: gen(n)) for n in SIZES[:-1]]
    benchmark.pedantic(gen, args=(SIZES[-1],), rounds=2, iterations=1)
    times.append(benchmark.stats.stats.min)
    import json

    rows = sum(f["rows"] for f in json.loads((tmp_path / f"d{SIZES[-1]}" / "manifest.json").read_text())["files"])
    benchmark.extra_info.update(sizes=list(SIZES), seconds=times, exponent=_exponent(SIZES, times), rows_per_s=rows / times[-1])
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_feature_scaling(benchmark, tmp_path: Path) -> None:
    """Per-IP features over every bucket at N, 2N, 4N customers; benchmark times 4N."""
    views = {}
    for n in SIZES:
        ds = Dataset.open(generate(_cfg(n), tmp_path / f"d{n}", force=True))
        views[n] = (ds, ds.view(ds.buckets[-1]))

    def feats(n: int) -> None:
        ds, v = views[n]
        gateway_features(v.logs("gateway"), v.logs("auth"), ds.timezone, "ip")

    times = [_best(lambda n=n: feats(n)) for n in SIZES[:-1]]
    benchmark.pedantic(feats, args=(SIZES[-1],), rounds=2, iterations=1)
    times.append(benchmark.stats.stats.min)
    events = views[SIZES[-1]][0].event_count(views[SIZES[-1]][0].buckets)
    benchmark.extra_info.update(
        sizes=list(SIZES), seconds=times, exponent=_exponent(SIZES, times), events_per_s=events / benchmark.stats.stats.min
    )
    shutil.rmtree(tmp_path, ignore_errors=True)
