"""A benchmark run end to end: dataset (generated or reused), detectors, oracle, scores, files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from breachbench.config import BenchConfig
from breachbench.dataset import Dataset
from breachbench.report import SCHEMA_VERSION, write_results
from breachbench.runner import ORACLE, DetectorRun, oracle_alerts, resolve_detectors, run_detector, summary_row
from breachbench.scoring import Truth, score_alerts
from simulator import layout
from simulator.engine import DATA_VERSION, config_hash, generate, package_versions


def ensure_dataset(cfg: BenchConfig, path: Path, *, workers: int, progress: Callable[[str, int, int], None] | None = None) -> tuple[Dataset, bool]:
    """Reuse the dataset at ``path`` when its manifest matches the config, else (re)generate it.

    Returns the dataset and whether it was reused.
    """
    sim = cfg.sim()
    manifest = path / layout.MANIFEST
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("config_hash") == config_hash(sim) and m.get("data_version") == DATA_VERSION and not m.get("only"):
            return Dataset.open(path), True
    generate(sim, path, workers=workers, force=True, progress=progress)
    return Dataset.open(path), False


def run_suite(cfg: BenchConfig, out: Path, *, workers: int = 1, progress: Any = None, gen_progress: Any = None, log: Callable[..., None] = print) -> dict[str, Any]:
    """Run the whole benchmark of ``cfg`` into ``out``; returns rows and file paths."""
    out = Path(out)
    ds, reused = ensure_dataset(cfg, out / "dataset", workers=workers, progress=gen_progress)
    log(f"dataset: {ds.root} ({'reused, manifest matches' if reused else 'generated'})")
    truth = Truth.of(ds)
    budget = cfg.detection.budget
    ids = resolve_detectors(cfg.detection.detectors)
    task = progress.add_task("detect", total=len(ids) * len(ds.scored)) if progress is not None else None

    def tick() -> None:
        if progress is not None:
            progress.advance(task)

    runs: list[DetectorRun] = []
    for det in ids:
        runs.append(run_detector(det, ds, on_bucket=tick))
    runs.append(DetectorRun(ORACLE, version="1", alerts=oracle_alerts(ds)))
    alerts_dir = out / "alerts"
    alerts_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in runs:
        scored = score_alerts(r.alerts, truth, budget=budget, profile=cfg.detection.cost_profile) if r.status == "OK" else {"overall": {}, "incidents": []}
        rows.append(summary_row(r, {**scored["overall"], "incidents": scored["incidents"]}))
        if r.status == "OK":
            r.alerts.write_parquet(alerts_dir / f"{r.detector}.parquet")
    payload = {
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg.sim()),
        "dataset": {"path": str(ds.root), "config_hash": ds.manifest["config_hash"], "data_version": ds.manifest["data_version"]},
        "seeds": [cfg.seed],
        "budget": budget,
        "versions": package_versions(),
        "results": rows,
    }
    res, board = write_results(out, payload, rows, cfg.name, budget)
    return {"rows": rows, "results": res, "leaderboard": board}
