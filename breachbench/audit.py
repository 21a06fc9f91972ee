"""Leakage audit: one-line shortcut detectors run bench-side on every scenario.

If a shortcut that knows nothing about the attack reaches 0.9 of the oracle's operational
score (the oracle scores 100; detections count actor units only, harm as the cost profile
weighs it) on a scenario, pooled over the run's seeds, the scenario is too
easy or leaks its label, and the report says so, naming the shortcut, unless the scenario
declares the variant easy on purpose (the forged-token case: its key's owner left), in which
case the report gives the scenario's reason.
Each shortcut reads only what a detector could (logs and world tables through the view).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from breachbench.dataset import Dataset
from breachbench.scoring import Truth, false_alert_cost, op_score, score_alerts
from detectors.contract import ALERTS
from detectors.features import UNIT_STREAMS
from detectors.view import View
from simulator.scenarios import load as load_scenario
from simulator.schema import ENTITY_COLUMNS, LOG_STREAMS

LEAK_SHARE = 0.9


def _alerts(frame: pl.DataFrame, bucket: dt.date | None, kind: str, reason: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(bucket, pl.Date).alias("bucket"),
        pl.lit(kind).alias("entity_kind"),
        pl.col("entity_id").cast(pl.String),
        pl.col("score").cast(pl.Float64),
        pl.lit(reason).alias("reason"),
    )


def foreign_ip(view: View) -> pl.DataFrame:
    """Any source address outside the company's home country."""
    from detectors.features import foreign

    parts = [
        view.logs(s, current_only=True).filter(foreign(view.timezone)).select(pl.col("src_ip").alias("entity_id"))
        for s in UNIT_STREAMS
    ]
    ips = pl.concat(parts).collect().group_by("entity_id").len().rename({"len": "score"})
    return _alerts(ips, view.bucket, "ip", "foreign IP")


def busiest_entity(view) -> pl.DataFrame:
    """The entities with the most events of the bucket, of every kind."""
    out = []
    for kind, col in ENTITY_COLUMNS.items():
        parts = [
            view.logs(s, current_only=True).select(pl.col(col).cast(pl.String).alias("entity_id")).drop_nulls()
            for s in UNIT_STREAMS
            if col in LOG_STREAMS[s]  # the stream's schema, not a scan of its files
        ]
        if parts:
            counts = pl.concat(parts).collect().group_by("entity_id").len().rename({"len": "score"})
            out.append(_alerts(counts, view.bucket, kind, "busiest"))
    return pl.concat(out)


def departed_owner(view) -> pl.DataFrame:
    """Keys whose owner has left, and employees active after their termination."""
    emp = view.world("employees").filter(pl.col("termination_date").is_not_null())
    keys = view.world("credentials").join(emp.select(pl.col("employee_id").alias("owner_employee_id")), on="owner_employee_id")
    used = (
        pl.concat([view.logs(s, current_only=True).select("key_id") for s in ("gateway", "auth")]).drop_nulls().unique().collect()
    )
    hit = used.join(keys.select("key_id"), on="key_id").select(pl.col("key_id").alias("entity_id"), pl.lit(1.0).alias("score"))
    return _alerts(hit, view.bucket, "key", "owner left")


def terminated_employee(view) -> pl.DataFrame:
    """Employees with a known termination date who show up in the bucket (the leaver rule)."""
    gone = (
        view.world("employees")
        .filter(pl.col("termination_date").is_not_null())
        .select(pl.col("employee_id").cast(pl.String).alias("entity_id"))
    )
    seen = pl.concat(
        [
            view.logs(s, current_only=True).select(pl.col("employee_id").cast(pl.String).alias("entity_id"))
            for s in ("auth", "admin")
        ]
    )
    hit = seen.drop_nulls().group_by("entity_id").len().collect().join(gone, on="entity_id").rename({"len": "score"})
    return _alerts(hit, view.bucket, "employee", "terminated")


def biggest_pull(view) -> pl.DataFrame:
    """Employees by the largest number of rows in one admin action of the bucket."""
    top = view.logs("admin", current_only=True).group_by("employee_id").agg(pl.col("row_count").max().alias("score")).collect()
    return _alerts(top.rename({"employee_id": "entity_id"}), view.bucket, "employee", "biggest pull")


def newest_key(view) -> pl.DataFrame:
    """The most recently created key in use."""
    used = (
        pl.concat([view.logs(s, current_only=True).select("key_id") for s in ("gateway", "auth")]).drop_nulls().unique().collect()
    )
    keys = view.world("credentials").join(used, on="key_id").sort("created", descending=True).head(1)
    return _alerts(keys.select(pl.col("key_id").alias("entity_id"), pl.lit(1.0).alias("score")), view.bucket, "key", "newest key")


def top_id_range(view) -> pl.DataFrame:
    """Customers with the highest ids seen in the bucket (a fixed id-range rule)."""
    ids = view.logs("gateway", current_only=True).select(pl.col("customer_id")).unique().collect()
    return _alerts(
        ids.select(pl.col("customer_id").alias("entity_id"), pl.col("customer_id").cast(pl.Float64).alias("score")),
        view.bucket,
        "customer",
        "high id",
    )


SHORTCUTS: dict[str, Callable] = {
    "any-foreign-ip": foreign_ip,
    "busiest-entity": busiest_entity,
    "departed-owner": departed_owner,
    "terminated-employee": terminated_employee,
    "biggest-pull": biggest_pull,
    "newest-key": newest_key,
    "id-range": top_id_range,
}


#: A bucket with at most this many log rows is read into memory once for all the shortcuts (:class:`_ReadOnce`).
READ_ONCE_ROWS = 2_000_000


class _ReadOnce:
    """A one-bucket view whose current logs and world tables are read once and shared by the shortcuts.

    Each shortcut scans the bucket's files again otherwise: 36,000 small reads for the default
    run's 20 datasets, three quarters of the audit's time. Anything else is the view's.
    """

    def __init__(self, view: View) -> None:
        self._view = view
        self._logs: dict[str, pl.DataFrame] = {}
        self._world: dict[str, pl.DataFrame] = {}

    def logs(self, stream: str, *, current_only: bool = False) -> pl.LazyFrame:
        if not current_only:
            return self._view.logs(stream)
        if stream not in self._logs:
            self._logs[stream] = self._view.logs(stream, current_only=True).collect()
        return self._logs[stream].lazy()

    def world(self, table: str) -> pl.DataFrame:
        if table not in self._world:
            self._world[table] = self._view.world(table)
        return self._world[table]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)


def declared_easy(ds: Dataset) -> dict[str, str]:
    """Scenario id -> why it is easy on purpose, for the dataset's scenarios that say so at their knobs."""
    out = {}
    for spec in ds.manifest.get("config", {}).get("scenarios", []):
        try:
            cls = load_scenario(spec["id"])
            reason = cls().declared_easy(cls.Knobs(**spec.get("knobs", {}))) if hasattr(cls, "declared_easy") else None
        except Exception:  # a scenario that no longer loads is simply not declared easy
            reason = None
        if reason:
            out[spec["id"]] = reason
    return out


def audit(ds: Dataset, truth: Truth, budget: int, profile: str = "standard") -> list[dict]:
    """Each shortcut's operational score on one dataset and whether it reaches the leak line there.

    A shortcut is scored at the run's budget and at budgets 1 and 3, and keeps its best: an
    analyst who reads only a shortcut's top alert is a fair use of it, and a scenario whose
    few records make a full budget of false alerts too dear must not hide a leak behind that.
    Each row keeps its cost parts per budget (``parts``) so that :func:`pooled` can judge a
    scenario over several datasets.
    """
    rows = []
    easy = "; ".join(f"{sid}: {why}" for sid, why in declared_easy(ds).items()) or None
    budgets = tuple(sorted({1, 3, budget}))
    found: dict[str, list[pl.DataFrame]] = {name: [] for name in SHORTCUTS}
    for b in ds.scored:  # one view per bucket, shared by the shortcuts (its logs read once when they are small)
        v = ds.view(b, b)
        view = _ReadOnce(v) if ds.event_count([b]) <= READ_ONCE_ROWS else v
        for name, fn in SHORTCUTS.items():
            found[name].append(fn(view).select(ALERTS.names()))
    for name, frames in found.items():
        alerts = pl.concat(frames).unique(subset=["bucket", "entity_kind", "entity_id"], keep="first", maintain_order=True)
        res = score_alerts(alerts, truth, budget=budget, profile=profile, budgets=budgets)
        parts = {int(k): _parts(m, profile) for k, m in res["by_budget"].items()}
        best_k, best = _best(parts, profile)
        m = res["by_budget"][str(best_k)]
        rows.append(
            {
                "shortcut": name,
                "op_score": best,
                "budget": best_k,
                "auprc": res["overall"]["auprc"],
                "recall_at_k": m["recall_at_k"],
                "leaks": best is not None and best >= LEAK_SHARE * 100,
                "declared_easy": easy,
                "parts": parts,
            }
        )
    return rows


def _parts(m: dict[str, Any], profile: str) -> tuple[float, float, float, float]:
    """(harm before detection, harm of no detector, harm of a perfect one, false alerts read) of one budget's metrics."""
    before, total, perfect = (float(x) for x in m["harm_by_profile"][profile])
    return before, total, perfect, float(m["false_alerts_read"])


def _best(parts: dict[int, tuple[float, float, float, float]], profile: str) -> tuple[int, float | None]:
    """(budget, op score) of the best budget; None when there is nothing to expose."""
    cost = false_alert_cost(profile)
    scores = {k: op_score(b, t, p, f, cost) for k, (b, t, p, f) in parts.items() if t > 0}
    if not scores:
        return min(parts), None
    k = max(scores, key=lambda k: (scores[k], -k))
    return k, scores[k]


def pooled(per_dataset: list[list[dict]], profile: str = "standard") -> list[dict]:
    """One scenario's audit over several datasets (seeds): costs summed, then the best budget.

    This is the verdict that counts: a shortcut that leaks a label wins on every seed, while a
    shortcut that happens to rank the actor first on one seed's first day does not lift the
    pooled score to the line.
    """
    out = []
    for i, first in enumerate(per_dataset[0]):
        rows = [d[i] for d in per_dataset]
        parts = {k: tuple(sum(r["parts"][k][j] for r in rows) for j in range(4)) for k in first["parts"]}
        k, best = _best(parts, profile)
        out.append(
            {
                "shortcut": first["shortcut"],
                "op_score": best,
                "budget": k,
                "datasets": len(rows),
                "per_dataset": [r["op_score"] for r in rows],
                "leaks": best is not None and best >= LEAK_SHARE * 100,
                "declared_easy": first["declared_easy"],
            }
        )
    return out


def leakage_audit(
    datasets: dict[str, Dataset],
    scenario_of: dict[str, str],
    budget: int,
    profile: str = "standard",
    truths: dict[str, Truth] | None = None,
) -> dict:
    """The whole run's audit, as ``results.json`` carries it: per dataset, then per scenario pooled over seeds.

    ``scenario_of`` maps a dataset label to its scenario entry's label. A scenario leaks when a
    shortcut's pooled score reaches the line and the scenario does not declare itself easy.
    ``truths``: each dataset's :class:`Truth` when the caller has it already (computed otherwise).
    """
    per_dataset: list[dict[str, Any]] = []
    per_scenario: dict[str, list[list[dict[str, Any]]]] = {}
    for label, ds in datasets.items():
        rows = audit(ds, truths[label] if truths and label in truths else Truth.of(ds), budget, profile)
        per_scenario.setdefault(scenario_of.get(label, label), []).append(rows)
        per_dataset += [{"dataset": label, **{k: v for k, v in r.items() if k not in ("parts", "declared_easy")}} for r in rows]
    scenarios = [{"scenario": name, **r} for name, runs in per_scenario.items() for r in pooled(runs, profile)]
    return {
        "line": LEAK_SHARE * 100,
        "shortcuts": list(SHORTCUTS),
        "leaking": sorted({r["scenario"] for r in scenarios if r["leaks"] and not r["declared_easy"]}),
        "declared_easy": {r["scenario"]: r["declared_easy"] for r in scenarios if r["declared_easy"]},
        "scenarios": scenarios,
        "datasets": per_dataset,
    }
