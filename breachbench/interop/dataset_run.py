"""``breachbench run DATASET``: every detector on one dataset folder (an imported one, say), labels or not.

Each detector runs in its own sealed process under the default limits (``[detection]`` of the bench
config), as in a suite. When the dataset lacks world tables, the detector's status names the
missing ones it read (its views note every world table read in that process: :data:`detectors.view.WORLD_READ`);
the detector never runs outside its seal. Writes ``alerts/<detector>.parquet``, ``top-alerts.md`` (each
detector's top ``budget`` alerts of every scored day) and ``results.json``; with labels
(``truth/``) each detector is also scored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from breachbench.config import DetectionConfig
from breachbench.dataset import Dataset
from breachbench.isolation import run_isolated
from breachbench.report import finite_json, md_cell
from breachbench.runner import resolve_detectors
from simulator import layout
from simulator.plugins import safe_id
from simulator.schema import WORLD_TABLES


def has_labels(ds: Dataset) -> bool:
    """Whether the dataset carries truth tables to score against."""
    return layout.truth_file(ds.root, "malicious_events").is_file()


def missing_world(ds: Dataset) -> list[str]:
    """World tables the dataset lacks (detectors that read one see it empty)."""
    return [t for t in WORLD_TABLES if not layout.world_glob(ds.root, t)]


def top_alerts_markdown(alerts: dict[str, pl.DataFrame], days: list[Any], budget: int, title: str) -> str:
    """Each detector's top ``budget`` alerts of each day, as Markdown tables."""
    out = [f"# Top alerts: {title}", "", f"The {budget} highest-scored alert units of each day, per detector.", ""]
    for det, df in alerts.items():
        out += [f"## {det if safe_id(det) else md_cell(det)}", ""]
        if df.height == 0:
            out += ["No alerts.", ""]
            continue
        out += ["| day | rank | entity | score | reason |", "|---|---|---|---|---|"]
        for day in days:
            top = (
                df.filter(pl.col("bucket") == day)
                .sort(["score", "entity_kind", "entity_id"], descending=[True, False, False])
                .head(budget)
            )
            for i, r in enumerate(top.iter_rows(named=True)):  # a report of at most budget x days rows
                entity, reason = md_cell(f"{r['entity_kind']} {r['entity_id']}"), md_cell(r["reason"] or "")
                out.append(f"| {day} | {i + 1} | {entity} | {r['score']:.4g} | {reason} |")
        out.append("")
    return "\n".join(out)


def run_dataset(
    dataset: str | Path, out: str | Path, *, detectors: list[str] | None = None, log: Callable[..., None] = print
) -> dict[str, Any]:
    """Run detectors on ``dataset``; returns the results written to ``out/results.json``."""
    from breachbench.scoring import Truth, score_alerts

    cfg = DetectionConfig()
    ds = Dataset.open(dataset)
    out = Path(out)
    (out / "alerts").mkdir(parents=True, exist_ok=True)
    labelled = has_labels(ds)
    truth = Truth.of(ds) if labelled else None
    absent = missing_world(ds)
    rows, alerts = [], {}
    for det in resolve_detectors(detectors or cfg.detectors):
        # the output folder is out of the slot's reach, as a suite run's: other detectors' alerts are there (and, in a
        # second run into it, results.json's scores against truth); a red-team plugin whose folder held the default
        # ./runs/<dataset> copied the built-ins' alerts and scored as they did
        run = run_isolated(det, ds.root, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb, protected=[out])
        run.alerts.write_parquet(out / "alerts" / f"{det}.parquet")
        alerts[det] = run.alerts
        row: dict[str, Any] = {"detector": det, "status": run.status, "error": run.error, "alerts": run.alerts.height}
        if absent and run.status == "OK":  # say which detectors wanted a table this dataset lacks
            row["world_tables_missing"] = sorted(set(run.world_read or []) & set(absent))
            if row["world_tables_missing"]:
                row["status"] = f"OK (needs world tables: {', '.join(row['world_tables_missing'])}; saw them empty)"
        if truth is not None and run.status == "OK":
            row["scores"] = score_alerts(run.alerts, truth, budget=cfg.budget, profile=cfg.cost_profile)["overall"]
        rows.append(row)
        log(f"{det}: {run.status}" + (f" ({run.error})" if run.error else "") + f", {run.alerts.height} alerts")
    (out / "top-alerts.md").write_text(top_alerts_markdown(alerts, ds.scored, cfg.budget, str(dataset)))
    result = {"dataset": str(dataset), "labels": labelled, "world_tables_absent": absent, "budget": cfg.budget, "rows": rows}
    (out / "results.json").write_text(json.dumps(finite_json(result), indent=1, default=str, sort_keys=True, allow_nan=False))
    return result
