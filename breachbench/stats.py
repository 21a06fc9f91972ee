"""Aggregation over a suite's runs (seeds x scenarios) with cluster-bootstrap confidence intervals.

A run is one detector on one dataset. Dataset-level metrics (AUPRC, lift) are averaged over
runs; incident-level metrics are pooled over the incidents of all runs (recall, exposure
prevented, time to detect); the operational score is computed from pooled costs, so null stays
0 and the oracle 100 by construction. Intervals resample whole runs with replacement (the
incidents of a run travel with it), which captures both seed-to-seed and incident-to-incident
variation. With few runs a percentile interval is far too narrow (two runs give just their
range), so the interval is the point estimate plus or minus Student's t quantile for n - 1
degrees of freedom times the bootstrap standard error (inflated by sqrt(n / (n - 1))), clipped
to the metric's range; it narrows as seeds are added. Where a resample misses every incident
(time to detect is infinite), the percentile interval is used for that metric.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from breachbench.scoring import cost_profiles, op_score

METRICS = (
    "auprc", "lift", "recall_at_k", "ttd_median_buckets", "exposed_before_detection", "exposure_prevented",
    "false_alerts_per_bucket", "op_score",
)


def aggregate(runs: list[dict[str, Any]], profile: str = "standard") -> dict[str, Any]:
    """Point estimates over runs (each with ``overall`` and ``incidents`` at the main budget)."""
    if not runs:
        return {m: None for m in METRICS} | {"exposed_total": None, "op_score_profiles": {}}
    ov = [r["overall"] for r in runs]
    inc = [i for r in runs for i in r["incidents"]]
    before = sum(i["exposed_before_detection"] for i in inc)
    total = sum(i["exposed_total"] for i in inc)
    perfect = sum(i["exposed_perfect"] for i in inc)
    false = sum(o["false_alerts_read"] for o in ov)
    buckets = sum(o["scored_buckets"] for o in ov)
    ttds = [math.inf if i["ttd_buckets"] is None else i["ttd_buckets"] for i in inc]
    med = float(np.median(ttds)) if ttds else math.inf
    lifts = [o["lift"] for o in ov if o.get("lift") is not None]
    cost = cost_profiles()["profiles"][profile]["false_alert"]
    return {
        "auprc": float(np.mean([o["auprc"] for o in ov])),
        "lift": float(np.mean(lifts)) if lifts else None,
        "recall_at_k": (sum(i["detected"] for i in inc) / len(inc)) if inc else None,
        "ttd_median_buckets": None if math.isinf(med) else med,
        "exposed_before_detection": before,
        "exposure_prevented": (1 - before / total) if total else None,
        "false_alerts_per_bucket": false / buckets if buckets else 0.0,
        "op_score": op_score(before, total, perfect, false, cost) if inc else None,
        "exposed_total": total,
        "op_score_profiles": {
            name: op_score(before, total, perfect, false, p["false_alert"]) if inc else None
            for name, p in cost_profiles()["profiles"].items()
        },
    }


def bootstrap(runs: list[dict[str, Any]], profile: str = "standard", resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, list[float | None]]:
    """Percentile intervals of :func:`aggregate` over runs resampled with replacement.

    A single run has no spread to resample: its intervals are ``[value, value]``.
    """
    point = aggregate(runs, profile)
    if len(runs) < 2:
        return {m: [point[m], point[m]] for m in METRICS}
    r = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(resamples):
        sample = [runs[i] for i in r.integers(0, len(runs), len(runs))]
        agg = aggregate(sample, profile)
        for m in METRICS:
            v = agg[m]
            draws[m].append(math.inf if v is None and m == "ttd_median_buckets" else (math.nan if v is None else float(v)))
    from scipy.stats import t as student_t

    n = len(runs)
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    t_q = float(student_t.ppf((1 + confidence) / 2, n - 1))
    out: dict[str, list[float | None]] = {}
    for m, vals in draws.items():
        a = np.asarray(vals, dtype=np.float64)
        a = a[~np.isnan(a)]
        if len(a) == 0:
            out[m] = [None, None]
            continue
        if np.isinf(a).any() or point[m] is None:
            lo, hi = np.percentile(a, [lo_q, hi_q], method="nearest")  # no interpolation across an infinite (missed) value
            out[m] = [None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi)]
            continue
        half = t_q * float(np.std(a, ddof=1)) * math.sqrt(n / (n - 1))
        lo_b, hi_b = BOUNDS.get(m, (-math.inf, math.inf))
        out[m] = [float(max(lo_b, point[m] - half)), float(min(hi_b, point[m] + half))]
    return out


#: Natural ranges of the metrics (intervals are clipped to them).
BOUNDS = {
    "auprc": (0.0, 1.0), "lift": (0.0, math.inf), "recall_at_k": (0.0, 1.0), "ttd_median_buckets": (0.0, math.inf),
    "exposed_before_detection": (0.0, math.inf), "exposure_prevented": (0.0, 1.0), "false_alerts_per_bucket": (0.0, math.inf),
    "op_score": (-math.inf, 100.0),
}
