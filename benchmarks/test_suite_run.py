"""The everyday loop: the whole default suite, the detector stage alone, and the per-pair cost of isolation.

- ``test_default_suite``: ``make run`` minus set-up (datasets cached: the suite's generation is
  timed by ``test_generation``), every detector on every dataset, scoring, chance lines, audits
  and reports. ``extra_info``: log rows per second, detector-dataset pairs.
- ``test_detector_stage``: every built-in detector on every dataset of the suite in warm sealed
  slots (one process per detector), as ``run`` does; rows per second.
- ``test_isolation_overhead``: one detector over the suite's datasets in process, in one warm
  slot and in one fresh slot per dataset, side by side in one run; seconds per pair and the
  ratios go to ``extra_info``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from benchmarks.conftest import CACHE, ROOT
from breachbench.config import load_config
from breachbench.dataset import Dataset
from breachbench.isolation import run_isolated, run_isolated_many
from breachbench.runner import resolve_detectors, run_detector
from breachbench.suite import ensure_dataset, grid, run_suite


@pytest.fixture(scope="module")
def suite_out() -> Path:
    """A run folder holding the default suite's datasets (generated once, cached)."""
    cfg = load_config(ROOT / "configs" / "default.toml")
    out = CACHE / "default-suite"
    for p in grid(cfg, out):
        ensure_dataset(
            cfg.model_copy(update={"seed": p.seed, "scenarios": [cfg.scenarios[p.index]] if p.index >= 0 else []}),
            p.path,
            workers=2,
        )
    return out


def _tests(out: Path) -> list[Dataset]:
    cfg = load_config(ROOT / "configs" / "default.toml")
    return [Dataset.open(p.path) for p in grid(cfg, out) if not p.tuning]


def test_default_suite(benchmark, suite_out: Path) -> None:
    cfg = load_config(ROOT / "configs" / "default.toml")
    events = sum(ds.event_count(ds.scored) for ds in _tests(suite_out))

    def once() -> None:
        for name in ("results.json", "alerts", "features"):  # nothing to reuse: every detector runs
            target = suite_out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        run_suite(cfg, suite_out, workers=2, log=lambda *a, **k: None, reuse=False)

    benchmark.pedantic(once, rounds=1, iterations=1)
    pairs = len(resolve_detectors(cfg.detection.detectors)) * len(_tests(suite_out))
    benchmark.extra_info.update(events=events, rows_per_s=events / benchmark.stats.stats.min, detector_dataset_pairs=pairs)


def test_detector_stage(benchmark, suite_out: Path) -> None:
    cfg = load_config(ROOT / "configs" / "default.toml")
    ids = resolve_detectors(cfg.detection.detectors)
    sets = _tests(suite_out)
    roots = [ds.root for ds in sets]

    def once() -> None:
        for det in ids:
            runs = run_isolated_many(det, roots, timeout_s=cfg.detection.timeout_s, memory_mb=cfg.detection.memory_mb)
            assert all(r.status == "OK" for r in runs), (det, [r.error for r in runs if r.status != "OK"][:1])

    benchmark.pedantic(once, rounds=1, iterations=1)
    events = sum(ds.event_count(ds.scored) for ds in sets) * len(ids)
    benchmark.extra_info.update(
        events=events, rows_per_s=events / benchmark.stats.stats.min, detectors=len(ids), datasets=len(sets)
    )


def test_isolation_overhead(benchmark, suite_out: Path) -> None:
    det = "stat-own-history-v1"
    sets = _tests(suite_out)[:6]
    roots = [ds.root for ds in sets]
    timings: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        t = time.perf_counter()
        fn()
        timings[name] = time.perf_counter() - t

    def once() -> None:
        timed("in_process", lambda: [run_detector(det, ds) for ds in sets])
        timed("warm_slot", lambda: run_isolated_many(det, roots, timeout_s=600, memory_mb=8192))
        timed("slot_per_dataset", lambda: [run_isolated(det, r, timeout_s=600, memory_mb=8192) for r in roots])

    benchmark.pedantic(once, rounds=1, iterations=1)
    n = len(sets)
    events = sum(ds.event_count(ds.scored) for ds in sets)
    benchmark.extra_info.update(
        detector=det,
        datasets=n,
        rows_per_s=events / timings["warm_slot"],
        **{f"{k}_s_per_pair": v / n for k, v in timings.items()},
        warm_over_in_process=timings["warm_slot"] / timings["in_process"],
        per_dataset_over_in_process=timings["slot_per_dataset"] / timings["in_process"],
        overhead_s_per_pair_warm=(timings["warm_slot"] - timings["in_process"]) / n,
        overhead_s_per_pair_per_dataset=(timings["slot_per_dataset"] - timings["in_process"]) / n,
    )
