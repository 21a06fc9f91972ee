"""Generation on each executor, side by side in one run: the process pool and Dask with 1 and 2 workers.

The dataset of benchmarks/test_generation.py (20k customers, 28 days, two blocks). ``dask`` starts
its own LocalCluster in every round, as ``breachbench generate --executor dask`` does (start-up
included); ``dask-warm`` joins a LocalCluster started once (``--scheduler``), the shards alone.
``extra_info`` has rows per second and the speed-up over the same executor with one worker.

    make setup && .venv/bin/python -m pytest benchmarks/test_executors.py --benchmark-only
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from breachbench.config import load_config
from simulator.engine import generate

ROOT = Path(__file__).resolve().parents[1]
_rates: dict[tuple[str, int], float] = {}


@pytest.mark.parametrize(
    ("executor", "workers"), [("process", 1), ("process", 2), ("dask", 1), ("dask", 2), ("dask-warm", 1), ("dask-warm", 2)]
)
def test_generate_on_executor(benchmark, tmp_path: Path, executor: str, workers: int) -> None:
    distributed = pytest.importorskip("distributed") if executor.startswith("dask") else None
    cfg = load_config(ROOT / "configs" / "tiny.toml", ["world.customers=20000", "world.block_size=10000"]).sim()
    out = tmp_path / "ds"
    with _cluster(distributed, workers) if executor == "dask-warm" else _nothing() as address:

        def once() -> None:
            generate(cfg, out, workers=workers, force=True, executor=executor.removesuffix("-warm"), scheduler=address)

        benchmark.pedantic(once, setup=lambda: shutil.rmtree(out, ignore_errors=True), rounds=3, iterations=1)
    manifest = json.loads((out / "manifest.json").read_text())
    rows = sum(f["rows"] for f in manifest["files"])
    rate = rows / benchmark.stats.stats.mean
    _rates[(executor, workers)] = rate
    one = _rates.get((executor, 1))
    benchmark.extra_info.update(
        rows=rows,
        rows_per_s=rate,
        executor=executor,
        workers=workers,
        speedup_vs_1_worker=rate / one if one else None,
        vs_process_pool=rate / _rates[("process", workers)] if ("process", workers) in _rates else None,
    )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _cluster:
    """A LocalCluster of ``workers`` single-threaded processes; yields its scheduler's address."""

    def __init__(self, distributed, workers: int) -> None:
        import os

        self._env = {"POLARS_MAX_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
        self._cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", env=self._env
        )

    def __enter__(self) -> str:
        return self._cluster.scheduler_address

    def __exit__(self, *exc: object) -> None:
        self._cluster.close()
