"""Compare two ``results.json`` files metric by metric, for CI gates on detection quality.

Runs are deterministic, so a tight tolerance works: ``breachbench compare OLD NEW --metric
op_score --tolerance 0.5`` fails when any detector's op_score in NEW is more than 0.5 below OLD
(for metrics where lower is better, such as time to detect, "drops" means rises).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Metrics where a smaller value is better.
LOWER_IS_BETTER = {"ttd_median_buckets", "exposed_before_detection", "false_alerts_per_bucket"}
METRICS = ("op_score", "auprc", "lift", "recall_at_k", "ttd_median_buckets", "exposed_before_detection", "exposure_prevented", "false_alerts_per_bucket")


class CompareError(ValueError):
    """Unreadable or incompatible results files."""


def load_results(path: Path) -> dict[str, Any]:
    """A results.json with a supported schema version."""
    if not path.is_file():
        raise CompareError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") != 2:
        raise CompareError(f"{path}: schema_version {data.get('schema_version') if isinstance(data, dict) else None!r} is not supported; accepted: 2")
    return data


def compare(old: dict[str, Any], new: dict[str, Any], metric: str, tolerance: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Per detector and metric: old, new, delta; and the detectors whose ``metric`` regressed."""
    if metric not in METRICS:
        raise CompareError(f"--metric {metric!r}: unknown; accepted: {', '.join(METRICS)}")
    o = {r["detector"]: r for r in old["results"]}
    n = {r["detector"]: r for r in new["results"]}
    rows, bad = [], []
    for det in sorted(set(o) | set(n)):
        for m in METRICS:
            a, b = (o.get(det) or {}).get(m), (n.get(det) or {}).get(m)
            delta = None if a is None or b is None else b - a
            worse = None if delta is None else (delta > tolerance if m in LOWER_IS_BETTER else -delta > tolerance)
            if m == metric and det in o and (det not in n or (worse or (a is not None and b is None))):
                bad.append(det)
            rows.append({"detector": det, "metric": m, "old": a, "new": b, "delta": delta, "regressed": bool(worse) if m == metric else None})
    return rows, sorted(set(bad))
