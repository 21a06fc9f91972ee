"""Throughput of every stage on a cached dataset: log shards, scenario rendering, the feature
table, each built-in detector's fit and score, and scoring. Rates and peak memory go to
``extra_info``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from benchmarks.conftest import ROOT, bench_config, peak_rss
from breachbench.config import load_config
from breachbench.dataset import Dataset
from breachbench.runner import run_detector
from breachbench.scoring import Truth, score_alerts
from detectors.features import gateway_features
from detectors.registry import load, registry
from simulator import engine
from simulator.errors import ScenarioError
from simulator.scenarios import load as load_scenario
from simulator.scenarios import registry as scenario_registry

BUILTINS = sorted(k for k, v in registry().items() if v.startswith("detectors."))


@pytest.fixture(scope="module")
def world_root(tmp_path_factory: pytest.TempPathFactory):
    """A generated world (no logs) plus what a log shard needs: config, plans, key ids."""
    cfg = bench_config("world.customers=20000", "world.block_size=10000").sim()
    root = tmp_path_factory.mktemp("world")
    engine.run_world_task(engine.WorldTask(cfg, root, staff=True))
    for b in range(2):
        engine.run_world_task(engine.WorldTask(cfg, root, [b]))
    st = engine.staff_tables(root)
    spec = cfg.scenarios[0]
    cls = load_scenario(spec.id)
    plan = cls().plan(cfg, st, 0, cls.Knobs(**spec.knobs))
    keys = st["credentials"].filter((pl.col("kind") == "token-signing") & pl.col("revoked").is_null())["key_id"].sort().to_list()
    yield cfg, root, [(spec.id, plan)], keys
    shutil.rmtree(root, ignore_errors=True)


def test_log_shard(benchmark, world_root) -> None:
    """One (day, block) of every log stream, with the scenario merged, sorted and written."""
    cfg, root, plans, keys = world_root
    day = plans[0][1].bulk_day
    with peak_rss() as mem:
        files = benchmark.pedantic(engine.log_shard, args=(cfg, root, day, 0, plans, keys), rounds=5, iterations=1).files
    rows: dict[str, int] = {}
    for f in files:  # a stream has its part file and, with late rows, the next bucket's late file
        rows[f["path"].split("/")[1]] = rows.get(f["path"].split("/")[1], 0) + f["rows"]
    benchmark.extra_info.update(
        rows=sum(rows.values()), rows_per_s=sum(rows.values()) / benchmark.stats.stats.mean, rows_by_stream=rows, **mem
    )


def test_scenario_render(benchmark, world_root) -> None:
    """coupang-forged-token-v3: the malicious rows of one bulk (day, block)."""
    cfg, root, plans, _ = world_root
    sid, plan = plans[0]
    ctx = engine.customer_block(cfg, root, 0)
    scenario = load_scenario(sid)()
    out = benchmark(scenario.render, plan, cfg, plan.bulk_day, 0, ctx)
    n = sum(df.height for df in out.values())
    benchmark.extra_info.update(scenario=sid, rows=n, rows_per_s=n / benchmark.stats.stats.mean)


STAFF_SCENARIOS = sorted(k for k, v in scenario_registry().items() if v.startswith("simulator.scenarios.insiders:"))


@pytest.mark.parametrize("sid", STAFF_SCENARIOS)
def test_staff_scenario_render(benchmark, world_root, sid: str) -> None:
    """A staff-side scenario: one weekday's malicious admin and auth rows of five blatant actors at ten times the rate."""
    cfg, root, _, _ = world_root
    st = engine.staff_tables(root)
    cls = load_scenario(sid)
    try:
        plan = cls().plan(cfg, st, 0, cls.Knobs(actors=5, rate=10.0, stealth=0.0, start_offset=0))
    except ScenarioError:  # a small world may not have five people who fit (administrators)
        plan = cls().plan(cfg, st, 0, cls.Knobs(actors=1, rate=50.0, stealth=0.0, start_offset=0))
    day = next(d for d in range(plan.first_day, plan.end_day) if (cfg.time.start + dt.timedelta(days=d)).weekday() < 5)
    sd = engine.staff_day_context(cfg, root, day, [])
    out = benchmark(cls().render_staff, plan, cfg, day, sd)
    n = sum(df.height for df in out.values())
    benchmark.extra_info.update(scenario=sid, rows=n, rows_per_s=n / benchmark.stats.stats.mean)


@pytest.mark.parametrize("kind", ["ip", "customer"])
def test_feature_table(benchmark, medium_dataset: Path, kind: str) -> None:
    """Entity-bucket features over every bucket of the medium dataset."""
    ds = Dataset.open(medium_dataset)
    view = ds.view(ds.buckets[-1])
    with peak_rss() as mem:
        out = benchmark.pedantic(
            gateway_features, args=(view.logs("gateway"), view.logs("auth"), ds.timezone, kind), rounds=3, iterations=1
        )
    events = ds.event_count(ds.buckets)
    benchmark.extra_info.update(
        kind=kind, events=events, events_per_s=events / benchmark.stats.stats.mean, feature_rows=out.height, **mem
    )


@pytest.mark.parametrize("detector", BUILTINS)
def test_detector_fit(benchmark, medium_dataset: Path, detector: str) -> None:
    """fit() on the warm-up buckets."""
    ds = Dataset.open(medium_dataset)
    view = ds.view(ds.warmup[-1])
    with peak_rss() as mem:
        benchmark.pedantic(lambda: load(detector)().fit(view), rounds=7, iterations=1)
    events = ds.event_count(ds.warmup)
    benchmark.extra_info.update(detector=detector, events=events, events_per_s=events / benchmark.stats.stats.mean, **mem)


@pytest.mark.parametrize("detector", BUILTINS)
def test_detector_score(benchmark, medium_dataset: Path, detector: str) -> None:
    """score() on three consecutive buckets after fitting."""
    ds = Dataset.open(medium_dataset)
    det = load(detector)().fit(ds.view(ds.warmup[-1]))
    days = ds.scored[5:8]
    views = [ds.view(d, d) for d in days]
    with peak_rss() as mem:
        benchmark.pedantic(lambda: [det.score(v) for v in views], rounds=7, iterations=1)
    events = ds.event_count(days)
    benchmark.extra_info.update(detector=detector, events=events, events_per_s=events / benchmark.stats.stats.mean, **mem)


def test_scoring(benchmark, medium_dataset: Path) -> None:
    """score_alerts of the random detector's alerts (every entity of every bucket) at the default suite's budgets, as a run scores."""
    ds = Dataset.open(medium_dataset)
    truth = Truth.of(ds)
    alerts = run_detector("random", ds).alerts
    budgets = tuple(load_config(ROOT / "configs" / "default.toml").suite.budgets)
    benchmark.pedantic(score_alerts, args=(alerts, truth), kwargs={"budgets": budgets}, rounds=3, iterations=1)
    benchmark.extra_info.update(
        alert_units=alerts.height, budgets=list(budgets), rows_per_s=alerts.height / benchmark.stats.stats.mean
    )


def test_dataset_truth(benchmark, medium_dataset: Path) -> None:
    """Positive units and the universe size (computed once per dataset before scoring)."""

    def fresh() -> None:
        ds = Dataset.open(medium_dataset)
        ds.positive_units  # noqa: B018 - computing it is the point
        ds.universe_size  # noqa: B018

    benchmark.pedantic(fresh, rounds=3, iterations=1)
    ds = Dataset.open(medium_dataset)
    events = ds.event_count(ds.buckets)
    benchmark.extra_info.update(
        events=events,
        events_per_s=events / benchmark.stats.stats.mean,
        days=len(ds.buckets),
        first=str(ds.buckets[0]),
        last=str(ds.buckets[-1] + dt.timedelta(days=0)),
    )


@pytest.mark.parametrize("stream", ["gateway", "auth"])
def test_customer_stream(benchmark, world_root, stream: str) -> None:
    """One customer stream of one (day, block): the normal rows of the day generated, then that
    stream ordered, numbered, soiled and written (generation is shared by gateway and auth)."""
    cfg, root, plans, keys = world_root
    ctx = engine.customer_block(cfg, root, 0)
    day = plans[0][1].bulk_day

    def once() -> int:
        rows = engine.normal_day(cfg, day, 0, ctx, keys)[stream]
        return sum(f["rows"] for f in engine._finish(cfg, root, stream, day, 0, [rows]).files)

    n = benchmark.pedantic(once, rounds=5, iterations=1)
    benchmark.extra_info.update(stream=stream, rows=n, rows_per_s=n / benchmark.stats.stats.mean)


def test_staff_streams(benchmark, world_root) -> None:
    """The staff's streams of one day (admin, staff auth, hr) with the hard negatives."""
    cfg, root, plans, keys = world_root
    from simulator.benign import plan_benign

    benign = plan_benign(cfg, engine.staff_tables(root))
    files = benchmark.pedantic(
        engine.staff_log_shard, args=(cfg, root, plans[0][1].bulk_day, benign), rounds=5, iterations=1
    ).files
    rows: dict[str, int] = {}
    for f in files:
        rows[f["path"].split("/")[1]] = rows.get(f["path"].split("/")[1], 0) + f["rows"]
    benchmark.extra_info.update(
        rows=sum(rows.values()), rows_by_stream=rows, rows_per_s=sum(rows.values()) / benchmark.stats.stats.mean
    )


def test_chance_draws(benchmark, medium_dataset: Path) -> None:
    """One dataset's chance draws as a run makes them: every blind ranking (each kind, public class and rotation) at the
    default suite's budgets, its 1,000 draws each (:func:`breachbench.chance.chance_draws_by_kind`)."""
    from breachbench.chance import actor_class_unions, chance_draws_by_kind

    cfg = load_config(ROOT / "configs" / "default.toml")
    truth = Truth.of(Dataset.open(medium_dataset))
    budgets = sorted(set(cfg.suite.budgets) | {cfg.detection.budget})
    unions = actor_class_unions([truth])

    def draw() -> dict[str, Any]:
        return chance_draws_by_kind(truth, budgets, cfg.suite.chance_draws, seed=1, unions=unions)

    with peak_rss() as mem:
        out = benchmark.pedantic(draw, rounds=3, iterations=1)
    lines = sum(len(by_budget) for by_budget in out.values())
    benchmark.extra_info.update(
        rankings=len(out),
        lines=lines,
        draws=cfg.suite.chance_draws,
        draws_per_s=lines * cfg.suite.chance_draws / benchmark.stats.stats.mean,
        units=truth.universe,
        **mem,
    )
