"""Leakage audit: one-line shortcut detectors run bench-side on every scenario.

If a shortcut that knows nothing about the attack reaches 0.9 of the oracle's operational
score (the oracle scores 100), the scenario is too easy or leaks its label, and the report says
so, naming the shortcut. Each shortcut reads only what a detector could (logs and world tables
through the view).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from breachbench.dataset import Dataset
from breachbench.scoring import Truth, score_alerts
from detectors.contract import ALERTS
from detectors.features import ENTITY_COLUMNS, UNIT_STREAMS

LEAK_SHARE = 0.9


def _alerts(frame: pl.DataFrame, bucket, kind: str, reason: str) -> pl.DataFrame:  # noqa: ANN001 - date
    return frame.select(
        pl.lit(bucket, pl.Date).alias("bucket"), pl.lit(kind).alias("entity_kind"), pl.col("entity_id").cast(pl.String), pl.col("score").cast(pl.Float64),
        pl.lit(reason).alias("reason"),
    )


def foreign_ip(view) -> pl.DataFrame:  # noqa: ANN001 - View
    """Any source address outside Korea."""
    parts = [view.logs(s, current_only=True).filter(pl.col("country") != "KR").select(pl.col("src_ip").alias("entity_id")) for s in UNIT_STREAMS]
    ips = pl.concat(parts).collect().group_by("entity_id").len().rename({"len": "score"})
    return _alerts(ips, view.bucket, "ip", "foreign IP")


def busiest_entity(view) -> pl.DataFrame:  # noqa: ANN001
    """The entities with the most events of the bucket, of every kind."""
    out = []
    for kind, col in ENTITY_COLUMNS.items():
        parts = [
            view.logs(s, current_only=True).select(pl.col(col).cast(pl.String).alias("entity_id")).drop_nulls()
            for s in UNIT_STREAMS if col in view.logs(s).collect_schema().names()
        ]
        if parts:
            counts = pl.concat(parts).collect().group_by("entity_id").len().rename({"len": "score"})
            out.append(_alerts(counts, view.bucket, kind, "busiest"))
    return pl.concat(out)


def departed_owner(view) -> pl.DataFrame:  # noqa: ANN001
    """Keys whose owner has left, and employees active after their termination."""
    emp = view.world("employees").filter(pl.col("termination_date").is_not_null())
    keys = view.world("credentials").join(emp.select(pl.col("employee_id").alias("owner_employee_id")), on="owner_employee_id")
    used = pl.concat([view.logs(s, current_only=True).select("key_id") for s in ("gateway", "auth")]).drop_nulls().unique().collect()
    hit = used.join(keys.select("key_id"), on="key_id").select(pl.col("key_id").alias("entity_id"), pl.lit(1.0).alias("score"))
    return _alerts(hit, view.bucket, "key", "owner left")


def newest_key(view) -> pl.DataFrame:  # noqa: ANN001
    """The most recently created key in use."""
    used = pl.concat([view.logs(s, current_only=True).select("key_id") for s in ("gateway", "auth")]).drop_nulls().unique().collect()
    keys = view.world("credentials").join(used, on="key_id").sort("created", descending=True).head(1)
    return _alerts(keys.select(pl.col("key_id").alias("entity_id"), pl.lit(1.0).alias("score")), view.bucket, "key", "newest key")


def top_id_range(view) -> pl.DataFrame:  # noqa: ANN001
    """Customers with the highest ids seen in the bucket (a fixed id-range rule)."""
    ids = view.logs("gateway", current_only=True).select(pl.col("customer_id")).unique().collect()
    return _alerts(ids.select(pl.col("customer_id").alias("entity_id"), pl.col("customer_id").cast(pl.Float64).alias("score")), view.bucket, "customer", "high id")


SHORTCUTS: dict[str, Callable] = {
    "any-foreign-ip": foreign_ip,
    "busiest-entity": busiest_entity,
    "departed-owner": departed_owner,
    "newest-key": newest_key,
    "id-range": top_id_range,
}


def audit(ds: Dataset, truth: Truth, budget: int, profile: str = "standard") -> list[dict]:
    """Each shortcut's operational score on the dataset and whether it reaches the leak line."""
    rows = []
    for name, fn in SHORTCUTS.items():
        frames = [fn(ds.view(b, b)).select(ALERTS.names()) for b in ds.scored]
        alerts = pl.concat(frames).unique(subset=["bucket", "entity_kind", "entity_id"], keep="first", maintain_order=True)
        m = score_alerts(alerts, truth, budget=budget, profile=profile)["overall"]
        rows.append({"shortcut": name, "op_score": m["op_score"], "auprc": m["auprc"], "recall_at_k": m["recall_at_k"],
                     "leaks": m["op_score"] is not None and m["op_score"] >= LEAK_SHARE * 100})
    return rows
