"""Scale benchmarks, opt-in (``BREACHBENCH_BIG=1 make perf``): minutes of generation first.

The feature table over about 100M gateway events (400k customers over 56 days), computed a
bucket at a time as detectors receive it, against the polars streaming reference: a plain group-by of the same events (requests and distinct
customers per source IP and bucket) in the same run. Events per second and peak RSS growth go
to ``extra_info``.
"""

from __future__ import annotations

import os
import time

import polars as pl
import pytest

from benchmarks.conftest import CACHE, bench_config, peak_rss
from breachbench.dataset import Dataset
from breachbench.testing import cached_dataset
from detectors.features import feature_table

pytestmark = pytest.mark.skipif(not os.environ.get("BREACHBENCH_BIG"), reason="scale benchmark: set BREACHBENCH_BIG=1")


@pytest.fixture(scope="module")
def big() -> Dataset:
    cfg = bench_config("world.customers=400000", "world.block_size=100000", "world.employees=2000", "time.end=2025-05-27").sim()
    return Dataset.open(cached_dataset(cfg, CACHE))


def _events(ds: Dataset) -> int:
    return sum(f["rows"] for f in ds.manifest["files"] if f["path"].startswith("logs/gateway/"))


def test_feature_table_100m(benchmark, big: Dataset) -> None:
    """Per-IP features of every bucket, one bucket at a time as detectors get them (the dataset carries no feature cache)."""
    views = [big.view(day, day) for day in big.buckets]
    with peak_rss() as mem:
        benchmark.pedantic(lambda: [feature_table(v, "ip") for v in views], rounds=1, iterations=1)
    n = _events(big)
    benchmark.extra_info.update(gateway_events=n, events_per_s=n / benchmark.stats.stats.min, **mem)


def test_streaming_reference_100m(benchmark, big: Dataset) -> None:
    """The yardstick: requests and distinct customers per (bucket, IP) with the streaming engine."""
    lf = big.scan("gateway").group_by("bucket", "src_ip").agg(pl.len(), pl.col("customer_id").n_unique())
    with peak_rss() as mem:
        benchmark.pedantic(lambda: lf.collect(engine="streaming"), rounds=1, iterations=1)
    n = _events(big)
    benchmark.extra_info.update(gateway_events=n, events_per_s=n / benchmark.stats.stats.min, **mem)


def test_feature_table_against_reference_100m(benchmark, big: Dataset) -> None:
    """The ratio, side by side: the reference before each of three rounds of the feature table; each one's best.

    On these machines the reference alone moved from 9 to 23 s between runs of one round (the
    feature table from 20 to 21 s), so a ratio of two separate one-round tests says little. The
    ratio of best times is in ``extra_info`` (``ratio_to_reference``; the issue's target is 2).
    """
    views = [big.view(day, day) for day in big.buckets]
    lf = big.scan("gateway").group_by("bucket", "src_ip").agg(pl.len(), pl.col("customer_id").n_unique())
    reference: list[float] = []

    def run_reference() -> None:
        t = time.perf_counter()
        lf.collect(engine="streaming")
        reference.append(time.perf_counter() - t)

    benchmark.pedantic(lambda: [feature_table(v, "ip") for v in views], setup=run_reference, rounds=3, iterations=1)
    best, ref = benchmark.stats.stats.min, min(reference)
    n = _events(big)
    benchmark.extra_info.update(
        gateway_events=n,
        events_per_s=n / best,
        reference_best_s=ref,
        reference_s=reference,
        ratio_to_reference=best / ref,
    )
