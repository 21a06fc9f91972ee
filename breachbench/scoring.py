"""Scoring alerts against truth (the evaluation protocol in README, "Metrics").

Alert unit: (bucket, entity_kind, entity_id). It is a true positive for incident I when an
event of I in that bucket involves that entity. Analysts read the top ``k`` units of each
bucket (ties broken by entity kind, then id). A detection happens at the end of the bucket of
the first true alert within budget; records whose first read is before that moment were
exposed before detection.

Operational score, per cost profile: cost = records exposed before detection + ``false_alert``
x false alerts read. ``null`` (no alerts) costs every exposed record; ``perfect`` alerts in the
first malicious bucket of every incident with no false alert. The score is
``100 * (cost_null - cost) / (cost_null - cost_perfect)``: 0 for null, 100 for perfect, below
0 for a detector whose false alerts cost more than the exposure it prevents.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from breachbench.dataset import Dataset
from detectors.contract import validate_alerts

KEYS = ["bucket", "entity_kind", "entity_id"]


def cost_profiles() -> dict[str, Any]:
    """The versioned cost profiles shipped with the package."""
    return tomllib.loads(resources.files("breachbench").joinpath("data/cost_profiles.toml").read_text())


def top_k(alerts: pl.DataFrame, k: int) -> pl.DataFrame:
    """The ``k`` highest-scored units of each bucket (ties: entity kind, then id)."""
    return (
        alerts.sort(["bucket", "score", "entity_kind", "entity_id"], descending=[False, True, False, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("bucket"))
        .filter(pl.col("rank") <= k)
    )


def average_precision(scores: np.ndarray, labels: np.ndarray, n_positive: int) -> float:
    """Average precision over a ranking, with unretrieved positives counted as misses.

    Tied scores enter together (as scikit-learn's step-wise AP). ``n_positive`` is every
    positive unit, retrieved or not, so emitting nothing scores 0.
    """
    if n_positive == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    n = last + 1
    precision = tp / n
    recall = tp / n_positive
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass
class Truth:
    """Everything scoring needs from a dataset, computed once and reused for every detector."""

    scored: list[dt.date]
    timezone: str
    positives: pl.DataFrame  # bucket, entity_kind, entity_id, incident_id (scored buckets only)
    incidents: pl.DataFrame
    exposure: pl.DataFrame  # incident_id, customer_id, first_ts: each customer once per incident
    universe: int
    exposure_kinds: pl.DataFrame | None = None  # the truth table: one row per (incident, customer, kind)

    @classmethod
    def of(cls, ds: Dataset) -> Truth:
        """Load the truth of a dataset, restricted to the scored buckets."""
        scored = ds.scored
        pos = ds.positive_units.filter(pl.col("bucket").is_in(scored))
        uni = ds.universe_size.filter(pl.col("bucket").is_in(scored))["units"].sum()
        kinds = ds.truth("exposure")
        records = kinds.group_by("incident_id", "customer_id").agg(pl.col("first_ts").min(), pl.col("reads").sum()).sort("incident_id", "customer_id")
        return cls(scored, ds.timezone, pos, ds.truth("incidents"), records, int(uni), kinds)

    def bucket_end(self, day: dt.date) -> dt.datetime:
        """UTC instant at which a bucket is over (when its alerts reach an analyst)."""
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(self.timezone)).astimezone(dt.timezone.utc)

    def local_day(self, ts: dt.datetime) -> dt.date:
        """The bucket of an instant."""
        return ts.astimezone(ZoneInfo(self.timezone)).date()


def _at_budget(labelled: pl.DataFrame, truth: Truth, k: int, profile: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Budget-dependent metrics at ``k``: detection per incident, exposure, false alerts, cost."""
    read = top_k(labelled, k)
    false_read = read.filter(~pl.col("hit"))
    n_buckets = len(truth.scored)
    true_read = read.filter(pl.col("hit")).join(truth.positives, on=KEYS, how="inner")
    first = true_read.group_by("incident_id").agg(pl.col("bucket").min().alias("detected_bucket"))
    per_incident = []
    exposed_before_total = exposed_total = perfect_total = 0
    for inc in truth.incidents.sort("incident_id").iter_rows(named=True):
        iid = inc["incident_id"]
        start = inc["start"]
        start_bucket = truth.local_day(start) if start is not None else None
        exp = truth.exposure.filter(pl.col("incident_id") == iid)["first_ts"]
        det = first.filter(pl.col("incident_id") == iid)["detected_bucket"]
        detected = det.len() > 0
        det_bucket = det[0] if detected else None
        total = exp.len()
        if detected:
            det_time = truth.bucket_end(det_bucket)
            before = int((exp < det_time).sum())
            ttd_buckets = (det_bucket - start_bucket).days
            ttd_hours = (det_time - start).total_seconds() / 3600
            false_before = false_read.filter(pl.col("bucket") <= det_bucket).height
        else:
            before, ttd_buckets, ttd_hours = total, None, None
            false_before = false_read.height
        perfect = int((exp < truth.bucket_end(start_bucket)).sum()) if start_bucket else 0
        exposed_before_total += before
        exposed_total += total
        perfect_total += perfect
        per_incident.append(
            {
                "incident_id": iid, "scenario": inc["scenario"], "detected": detected,
                "detected_bucket": det_bucket.isoformat() if det_bucket else None,
                "ttd_buckets": ttd_buckets, "ttd_hours": ttd_hours,
                "exposed_before_detection": before, "exposed_total": total, "exposed_perfect": perfect,
                "false_alerts_before_detection": false_before,
            }
        )
    n_inc = len(per_incident)
    ttds = [math.inf if p["ttd_buckets"] is None else p["ttd_buckets"] for p in per_incident]
    med = float(np.median(ttds)) if ttds else None
    op = {
        name: op_score(exposed_before_total, exposed_total, perfect_total, false_read.height, prof["false_alert"])
        for name, prof in cost_profiles()["profiles"].items()
    }
    out = {
        "budget": k,
        "recall_at_k": (sum(p["detected"] for p in per_incident) / n_inc) if n_inc else None,
        "ttd_median_buckets": None if med is None or math.isinf(med) else med,
        "exposed_before_detection": exposed_before_total,
        "exposed_total": exposed_total,
        "exposure_prevented": (1 - exposed_before_total / exposed_total) if exposed_total else None,
        "false_alerts_read": false_read.height,
        "false_alerts_per_bucket": false_read.height / n_buckets if n_buckets else 0.0,
        "alerts_before_first_true": (float(np.mean([p["false_alerts_before_detection"] for p in per_incident])) if n_inc else None),
        "op_score": op[profile],
        "op_score_profiles": op,
    }
    return out, per_incident


def op_score(exposed_before: float, exposed_total: float, exposed_perfect: float, false_alerts: float, false_alert_cost: float) -> float:
    """100 * (cost of null - cost) / (cost of null - cost of perfect); see the module docstring."""
    cost = exposed_before + false_alert_cost * false_alerts
    null, perfect = float(exposed_total), float(exposed_perfect)
    if null > perfect:
        return 100.0 * (null - cost) / (null - perfect)
    return 100.0 if cost <= perfect else 0.0


def pr_curve(scores: np.ndarray, labels: np.ndarray, n_positive: int, points: int = 200) -> dict[str, list[float]]:
    """Precision and recall at each distinct threshold (at most ``points`` of them kept)."""
    if n_positive == 0 or len(scores) == 0:
        return {"precision": [], "recall": []}
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    precision, recall = tp / (last + 1), tp / n_positive
    keep = np.unique(np.linspace(0, len(last) - 1, min(points, len(last))).astype(int))
    return {"precision": precision[keep].round(6).tolist(), "recall": recall[keep].round(6).tolist()}


def budget_curve(labelled: pl.DataFrame, truth: Truth, max_k: int) -> list[float | None]:
    """Incident recall at every budget 1..max_k."""
    n_inc = truth.incidents.height
    if n_inc == 0:
        return [None] * max_k
    ranked = top_k(labelled, max_k).filter(pl.col("hit")).join(truth.positives, on=KEYS, how="inner")
    best = ranked.group_by("incident_id").agg(pl.col("rank").min())  # the smallest budget that finds it at all
    ranks = best["rank"].to_numpy()
    return [float((ranks <= k).sum() / n_inc) for k in range(1, max_k + 1)]


def score_alerts(alerts: pl.DataFrame, truth: Truth, budget: int = 10, profile: str = "standard", budgets: tuple[int, ...] = ()) -> dict[str, Any]:
    """Every metric of one detector's alerts.

    Returns ``overall`` (at ``budget``), ``incidents`` (one entry each, at ``budget``),
    ``by_budget`` (the budget-dependent metrics at each of ``budgets``) and ``curves``
    (precision-recall points and the budget curve of incident recall at k = 1..max budget).
    """
    alerts = validate_alerts(alerts, source="alerts").filter(pl.col("bucket").is_in(truth.scored))
    pos_units = truth.positives.select(KEYS).unique()
    n_pos = pos_units.height
    labelled = alerts.join(pos_units.with_columns(hit=pl.lit(True)), on=KEYS, how="left").with_columns(pl.col("hit").fill_null(False))
    scores, hits = labelled["score"].to_numpy(), labelled["hit"].to_numpy()
    ap = average_precision(scores, hits, n_pos)
    prevalence = n_pos / truth.universe if truth.universe else 0.0
    main, per_incident = _at_budget(labelled, truth, budget, profile)
    overall = {
        "auprc": ap,
        "prevalence": prevalence,
        "lift": ap / prevalence if prevalence else None,
        **main,
        "cost_profiles_version": cost_profiles()["version"],
        "alert_units": alerts.height,
        "positive_units": n_pos,
        "scored_buckets": len(truth.scored),
    }
    ks = sorted(set(budgets) | {budget})
    by_budget = {str(k): (main if k == budget else _at_budget(labelled, truth, k, profile)[0]) for k in ks}
    curves = {"pr": pr_curve(scores, hits, n_pos), "budget": budget_curve(labelled, truth, max(ks))}
    return {"overall": overall, "incidents": per_incident, "by_budget": by_budget, "curves": curves}
